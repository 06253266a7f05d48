"""A new user's mistakes end a command at once with one line naming the fix.

Each runs the real command in a subprocess, with a wide terminal so that a
message is one line as written (rich would wrap it at 80 columns).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.services import free_port

SECRET = "s3cretQZ"


def agrimatch(*args: str, timeout: float = 120, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env |= {"COLUMNS": "400"} | variables
    return subprocess.run(
        [sys.executable, "-m", "agrimatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single line of stderr, which must be an error."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "url",
    [
        f"mqtt://user:{SECRET}#x@h:1883",
        f"mqtt://user:{SECRET}/x@h:1883",
        f"mqtt://user:{SECRET}?x@h:1883",
        f"mqtt://user:1{SECRET}#x@h:1883",
        "mqtt://user:1234#x@h:1883",  # would have parsed as host "user", port 1234
    ],
    ids=["hash", "slash", "question-mark", "hash-digits-after", "numeric-before-hash"],
)
def test_an_mqtt_url_with_an_unencoded_password_character_is_refused_without_echoing_it(url):
    done = agrimatch("config", "show", AGRIMATCH_MQTT_URL=url)
    assert done.returncode == 2
    line = one_error_line(done)
    assert "AGRIMATCH_MQTT_URL" in line and "percent-encode" in line and "%23" in line
    assert SECRET not in done.stdout + done.stderr and "1234" not in line


def test_a_database_url_of_another_kind_is_refused_at_start_naming_the_variable():
    done = agrimatch("config", "show", AGRIMATCH_DATABASE_URL=f"mysql://root:{SECRET}@db/x")
    assert done.returncode == 2
    line = one_error_line(done)
    assert "AGRIMATCH_DATABASE_URL" in line and "mysql://" in line and "postgresql://" in line
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["demo", "--duration", "0"],
        ["sim", "backfill", "--seasons", "1"],
        ["forecast", "show"],
        ["forecast", "run", "--as-of", "2026-04-15"],
        ["scheduler", "--run-now", "forecast"],
        ["keys", "list"],
        ["serve"],
    ],
    ids=["demo", "sim-backfill", "forecast-show", "forecast-run", "scheduler", "keys", "serve"],
)
def test_a_data_dir_that_cannot_be_created_is_one_line_naming_the_variable(command):
    done = agrimatch(*command, AGRIMATCH_DATA_DIR="/proc/nope")
    assert done.returncode == 2
    line = one_error_line(done)
    assert "AGRIMATCH_DATA_DIR=/proc/nope" in line and "writ" in line


def test_ingest_on_the_embedded_store_checks_the_data_dir_too():
    done = agrimatch(
        "ingest", AGRIMATCH_DATA_DIR="/proc/nope", AGRIMATCH_MQTT_URL="mqtt://127.0.0.1:1"
    )
    assert done.returncode == 2
    assert "AGRIMATCH_DATA_DIR=/proc/nope" in one_error_line(done)


def test_demo_with_influxdb_unreachable_is_one_line_naming_the_variable(tmp_path):
    port = free_port()  # nobody listens there
    started = time.monotonic()
    done = agrimatch(
        "demo",
        "--duration",
        "0",
        AGRIMATCH_DATA_DIR=str(tmp_path),
        AGRIMATCH_INFLUX_URL=f"http://admin:{SECRET}@127.0.0.1:{port}",
    )
    assert done.returncode == 1
    line = one_error_line(done)  # was 911 lines of retry warnings and a traceback
    assert f"AGRIMATCH_INFLUX_URL=http://admin:********@127.0.0.1:{port}" in line
    assert "not reachable" in line
    assert SECRET not in done.stdout + done.stderr
    assert time.monotonic() - started < 100  # a bounded check, not minutes of retries
