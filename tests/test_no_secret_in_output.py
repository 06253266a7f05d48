"""No secret in any output, error or log, ever.

One known secret is set in every setting that can hold one (passwords in
the broker, InfluxDB and registry URLs, the InfluxDB password and token, the
API key pepper); then every output path is run and searched for it: stdout
and stderr of the commands (their logs go to stderr) working and failing,
settings errors, dead letters on the broker, ingest's metrics page, a job
run's recorded error, and the API's problem bodies and logs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest

from agrimatch.mqtt import MqttEndpoint, make_paho_client
from tests.loadgen import Publisher, make_messages, wait_until
from tests.services import MosquittoServer, free_port

pytestmark = pytest.mark.services

SECRET = "s3cretK7w"


def secret_env(tmp_path: Path, *, mqtt_port: int, influx_url: str) -> dict[str, str]:
    """The environment with the secret everywhere it may go; URLs point at ``mqtt_port``
    and ``influx_url`` (``http://host:port``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    host_port = influx_url.removeprefix("http://")
    return env | {
        "COLUMNS": "400",  # rich must neither wrap nor cut a line: a cut secret would hide
        "AGRIMATCH_DATA_DIR": str(tmp_path / "data"),
        "AGRIMATCH_MQTT_URL": f"mqtt://ingest:{SECRET}@127.0.0.1:{mqtt_port}",
        "AGRIMATCH_INFLUX_URL": f"http://admin:{SECRET}@{host_port}",
        "AGRIMATCH_INFLUX_PASSWORD": SECRET,
        "AGRIMATCH_API_KEY_PEPPER": SECRET,
        "AGRIMATCH_INGEST_STATS_INTERVAL_S": "1",
        "AGRIMATCH_INGEST_CONNECT_TIMEOUT_S": "3",
    }


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "agrimatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done.stdout + done.stderr


@pytest.fixture
def broker(tmp_path):
    server = MosquittoServer(tmp_path / "mosquitto")  # anonymous: any password is let in
    server.start()
    yield server
    server.stop()


def test_the_known_secret_appears_in_no_output(tmp_path, broker, influx_server, caplog):
    closed = free_port()
    outputs: dict[str, str] = {}
    working = secret_env(tmp_path, mqtt_port=broker.port, influx_url=influx_server.url)
    broken = secret_env(tmp_path, mqtt_port=closed, influx_url=f"http://127.0.0.1:{closed}")

    # Settings shown, and settings refused.
    outputs["config show"] = run(working | {"AGRIMATCH_INFLUX_TOKEN": SECRET}, "config", "show")
    for cut in "#/?":
        bad = {"AGRIMATCH_MQTT_URL": f"mqtt://u:{SECRET}{cut}x@h:1883"}
        outputs[f"config show, {cut} in the password"] = run(working | bad, "config", "show")
    mysql = {"AGRIMATCH_DATABASE_URL": f"mysql://root:{SECRET}@db/agrimatch"}
    outputs["config show, mysql"] = run(working | mysql, "config", "show")
    postgres = {"AGRIMATCH_DATABASE_URL": f"postgresql://u:{SECRET}@127.0.0.1:{closed}/x"}
    outputs["config show, postgresql"] = run(working | postgres, "config", "show")

    # Services missing: broker, InfluxDB, a job against it.
    outputs["ingest, broker unreachable"] = run(broken, "ingest")
    outputs["sim, broker unreachable"] = run(broken, "sim", "--devices", "1")
    outputs["demo, InfluxDB unreachable"] = run(broken, "demo", "--duration", "0")
    outputs["scheduler job, InfluxDB unreachable"] = run(
        broken, "scheduler", "--run-now", "refresh-features"
    )
    registry = sqlite3.connect(tmp_path / "data" / "registry.sqlite3")
    errors = [row[0] or "" for row in registry.execute("SELECT error FROM job_runs")]
    registry.close()
    assert errors and all(errors), "the job run recorded no error"
    outputs["job_runs.error"] = "\n".join(errors)

    # Ingest working: its logs, its metrics page, the dead letters it publishes.
    metrics_port = free_port()
    endpoint = MqttEndpoint.from_url(broker.url)
    letters: list[paho.MQTTMessage] = []
    watcher = make_paho_client(endpoint, "secret-watcher")
    watcher.on_message = lambda c, u, m: letters.append(m)
    watcher.connect(endpoint.host, endpoint.port)
    watcher.subscribe("agrimatch/v1/_dead/#", qos=1)
    watcher.loop_start()
    process = subprocess.Popen(
        [sys.executable, "-m", "agrimatch", "ingest", "-v"],
        # Place check off: make_messages' device ids are in no registry.
        env=working
        | {
            "AGRIMATCH_INGEST_METRICS_PORT": str(metrics_port),
            "AGRIMATCH_INGEST_CHECK_PLACE": "false",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = f"http://127.0.0.1:{metrics_port}/metrics"

        def connected() -> bool:
            try:
                return "agrimatch_ingest_connected 1.0" in httpx.get(page, timeout=2).text
            except httpx.HTTPError:
                return False

        assert wait_until(connected, 60), "ingest did not come up"
        good = make_messages(1, 2, time.time() - 600)
        publisher = Publisher(endpoint)
        publisher.publish_all(good)
        publisher.publish(good[0].address.telemetry_topic, b"not json").wait_for_publish(10)
        publisher.close()
        assert wait_until(lambda: len(letters) == 1, 30)
        outputs["dead letter"] = letters[0].payload.decode()
        outputs["ingest metrics page"] = httpx.get(page, timeout=5).text
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
        watcher.loop_stop()
        watcher.disconnect()
    outputs["ingest logs"] = out
    assert "readings_stored" in out

    # The API: problem bodies (no key, a store that is down) and its logs.
    from fastapi.testclient import TestClient

    from agrimatch.settings import load_settings
    from api import create_app

    saved = {k: v for k, v in os.environ.items() if k.startswith("AGRIMATCH_")}
    os.environ.update({k: v for k, v in broken.items() if k.startswith("AGRIMATCH_")})
    try:
        settings = load_settings()
    finally:
        for key in [k for k in os.environ if k.startswith("AGRIMATCH_")]:
            del os.environ[key]
        os.environ.update(saved)
    with caplog.at_level(logging.DEBUG), TestClient(create_app(settings)) as client:
        for path in ("/readyz", "/v1/devices", "/v1/fields"):
            answer = client.get(path)
            outputs[f"API {path} {answer.status_code}"] = answer.text
    outputs["API logs"] = "\n".join(r.getMessage() for r in caplog.records)

    leaks = [where for where, text in outputs.items() if SECRET in text]
    assert not leaks, {where: outputs[where][-600:] for where in leaks}
    # The searches looked at real output, not at nothing.
    assert json.loads(outputs["dead letter"])["reason"] == "not_json"
    assert "admin:********@" in outputs["config show"]
    assert "agrimatch_ingest_readings_stored_total" in outputs["ingest metrics page"]
