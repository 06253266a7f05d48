"""The healthchecks docker-compose.yml runs, run here against real processes.

``agrimatch-healthcheck`` (deploy/healthcheck.py) as the image installs it, and
the broker's check exactly as written in the compose file, against a real
Mosquitto that refuses anonymous clients.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.services import LOCALHOST, MosquittoServer

REPO = Path(__file__).resolve().parents[2]
HEALTHCHECK = REPO / "deploy" / "healthcheck.py"


def healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def compose_check(service: str) -> list[str]:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    return services[service]["healthcheck"]["test"]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = {
            "/metrics": (200, b"agrimatch_ingest_connected 1.0\n"),
            "/metrics-down": (200, b"agrimatch_ingest_connected 0.0\n"),
            "/readyz": (503, b'{"status": "not ready"}'),
        }.get(self.path, (404, b""))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer((LOCALHOST, 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOCALHOST}:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_http_is_healthy_on_2xx_with_the_expected_text_and_not_otherwise(http_server):
    expect = ["--expect", "agrimatch_ingest_connected 1.0"]
    assert healthcheck("http", f"{http_server}/metrics", *expect).returncode == 0
    down = healthcheck("http", f"{http_server}/metrics-down", *expect)
    assert down.returncode == 1 and "does not say" in down.stderr
    not_ready = healthcheck("http", f"{http_server}/readyz")
    assert not_ready.returncode == 1 and "503" in not_ready.stderr
    gone = healthcheck("http", f"http://{LOCALHOST}:1/metrics", "--timeout", "2")
    assert gone.returncode == 1 and "unreachable" in gone.stderr


def test_the_ingest_and_api_checks_in_compose_use_the_installed_healthcheck():
    assert compose_check("ingest-1")[:3] == ["CMD", "agrimatch-healthcheck", "http"]
    assert "agrimatch_ingest_connected 1.0" in compose_check("ingest-2")
    assert compose_check("api")[-1] == "http://127.0.0.1:8080/readyz"
    assert compose_check("scheduler")[2] == "scheduler"
    assert (
        "COPY deploy/healthcheck.py /opt/agrimatch/bin/agrimatch-healthcheck"
        in (REPO / "deploy" / "Dockerfile").read_text()
    )


def _job_store(data_dir: Path, jobs: dict[str, float | None]) -> None:
    # The table APScheduler's SQLAlchemyJobStore keeps (forecasting.jobs.JOBSTORE_TABLE).
    with sqlite3.connect(data_dir / "registry.sqlite3") as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS apscheduler_jobs "
            "(id VARCHAR(191) PRIMARY KEY, next_run_time FLOAT, job_state BLOB NOT NULL)"
        )
        db.execute("DELETE FROM apscheduler_jobs")
        for job, next_run in jobs.items():
            db.execute("INSERT INTO apscheduler_jobs VALUES (?, ?, x'00')", (job, next_run))


def test_the_scheduler_is_healthy_while_its_jobs_are_not_overdue(tmp_path):
    env = {"AGRIMATCH_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    missing = healthcheck("scheduler", env=env)
    assert missing.returncode == 1 and "no job store" in missing.stderr
    _job_store(tmp_path, {})
    empty = healthcheck("scheduler", env=env)
    assert empty.returncode == 1 and "has not started" in empty.stderr
    now = time.time()
    _job_store(tmp_path, {"forecast": now + 3600, "retrain": now + 86400, "paused": None})
    assert healthcheck("scheduler", env=env).returncode == 0
    _job_store(tmp_path, {"forecast": now - 3600, "retrain": now + 86400})
    late = healthcheck("scheduler", "--overdue-s", "900", env=env)
    assert late.returncode == 1 and "forecast" in late.stderr and "retrain" not in late.stderr


def test_connected_sees_an_established_connection_to_the_port(tmp_path):
    listener = socket.create_server((LOCALHOST, 0))
    port = listener.getsockname()[1]
    assert healthcheck("connected", "--port", str(port)).returncode == 1
    client = socket.create_connection((LOCALHOST, port))
    accepted, _ = listener.accept()
    try:
        assert healthcheck("connected", "--port", str(port)).returncode == 0
    finally:
        client.close()
        accepted.close()
        listener.close()


class _SecuredMosquitto(MosquittoServer):
    """Mosquitto as the stack runs it in this respect: anonymous clients refused."""

    def _config(self) -> str:
        passwords = self.root / "passwd"
        passwords.write_text("")
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), "ingest", "pw"], check=True)
        return (
            super()._config().replace("allow_anonymous true", "allow_anonymous false")
            + f"password_file {passwords}\n"
        )


@pytest.mark.services
def test_the_brokers_compose_check_passes_on_a_live_broker_without_a_password(tmp_path):
    kind, command = compose_check("mosquitto")
    assert kind == "CMD-SHELL"
    server = _SecuredMosquitto(tmp_path / "mosquitto")
    # As compose runs it: $$ is a literal $, and the port is this server's.
    shell = command.replace("$$", "$").replace("-p 1883", f"-p {server.port}")
    server.start()
    try:
        up = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=30)
        assert up.returncode == 0, up.stdout + up.stderr
    finally:
        server.stop()
    down = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=30)
    assert down.returncode != 0
