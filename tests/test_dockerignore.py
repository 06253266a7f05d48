"""The Docker build context leaves out secrets, local data, environments and caches.

``deploy/Dockerfile`` copies the whole context (``COPY . .``), so ``.dockerignore``
is what keeps a local ``.env`` out of the image. Docker's rules are applied here:
patterns relative to the root, ``*`` within a path segment, ``**`` across any
number of them, and a path is left out when it or a folder above it matches.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def _patterns() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        rules.append((negated, _regex(line.lstrip("!").strip("/"))))
    return rules


def excluded(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching rule wins)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for negated, pattern in _patterns():
        if any(pattern.match(p) for p in prefixes):
            verdict = not negated
    return verdict


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.production",
        "deploy/.env",
        "deploy/passwd",
        "data/telemetry.sqlite3",
        "data/backtest/default/history.json",
        "registry.sqlite3",
        ".venv/bin/python",
        ".git/config",
        "agrimatch/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".mypy_cache/3.11/agrimatch/settings.data.json",
        ".ruff_cache/content",
        ".hypothesis/examples/x",
        "agrimatch.egg-info/PKG-INFO",
        "build/lib/agrimatch/__init__.py",
        "tests/artifacts/dashboard.png",
    ],
)
def test_secrets_data_environments_and_caches_stay_out_of_the_image(path):
    assert excluded(path), path


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "README.md",
        "agrimatch/settings.py",
        "agrimatch/scenarios/default.toml",
        "api/dashboard/static/index.html",
        "firmware-sim/firmware_sim/node.py",
        "deploy/Dockerfile",
        "deploy/mosquitto.conf",
    ],
)
def test_what_the_image_is_built_from_stays_in(path):
    assert not excluded(path), path


def test_no_file_under_version_control_is_left_out():
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked and [f for f in tracked if excluded(f)] == []
