"""Packaging: every package in the tree ships, firmware_sim from firmware-sim/."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tree_packages() -> set[str]:
    found = set()
    for top, base in (
        ("agrimatch", ROOT),
        ("ingest", ROOT),
        ("forecasting", ROOT),
        ("api", ROOT),
        ("firmware_sim", ROOT / "firmware-sim"),
    ):
        for init in (base / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(base).parts))
    return found


def test_pyproject_lists_every_package_in_the_tree():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    assert listed == _tree_packages()


def test_the_wheel_holds_all_packages_and_the_console_script(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("agrimatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package in _tree_packages():
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    assert "firmware_sim/py.typed" in names
    for data in (
        "agrimatch/scenarios/default.toml",
        "agrimatch/scenarios/garlic-glut.toml",
        "agrimatch/agronomy/crops.toml",
        "agrimatch/agronomy/soils.toml",
        "agrimatch/registry/migrations/script.py.mako",
        "agrimatch/registry/migrations/versions/0002_forecasts.py",
    ):
        assert data in names, data
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "agrimatch = agrimatch.cli:app" in text
