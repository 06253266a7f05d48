"""The vendored chart library: the files match the manifest scripts/vendor-frontend wrote,
the pinned version is the one loaded, and every static file ships in the wheel."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import tomllib
from pathlib import Path

from api.dashboard import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
VENDOR = STATIC_DIR / "vendor"


def _manifest() -> dict:
    return json.loads((VENDOR / "manifest.json").read_text())


def _pin(name: str) -> str:
    script = (ROOT / "scripts" / "vendor-frontend").read_text()
    match = re.search(rf"^{name}=(\S+)$", script, re.M)
    assert match, name
    return match.group(1)


def test_vendored_files_match_their_manifest_hashes() -> None:
    files = _manifest()["files"]
    on_disk = {p.name for p in VENDOR.iterdir() if p.name != "manifest.json"}
    assert set(files) == on_disk
    for name, recorded in files.items():
        body = (VENDOR / name).read_bytes()
        assert hashlib.sha256(body).hexdigest() == recorded["sha256"], name
        assert len(body) == recorded["bytes"], name


def test_the_manifest_records_the_pinned_release() -> None:
    manifest = _manifest()
    assert manifest["package"] == _pin("PACKAGE") == "uplot"
    assert manifest["version"] == _pin("VERSION")
    assert manifest["integrity"] == _pin("INTEGRITY")
    # The build banner names its version: the file is the release the manifest says.
    head = (VENDOR / "uPlot.iife.min.js").read_text()[:200]
    assert f"(v{manifest['version']})" in head
    assert "MIT License" in (VENDOR / "uplot.LICENSE.txt").read_text()


def test_package_data_ships_every_static_file() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    assert "api.dashboard" in setuptools["packages"]
    patterns = setuptools["package-data"]["api.dashboard"]
    package_dir = STATIC_DIR.parent
    for path in STATIC_DIR.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            relative = path.relative_to(package_dir).as_posix()
            assert any(fnmatch.fnmatchcase(relative, p) for p in patterns), relative
