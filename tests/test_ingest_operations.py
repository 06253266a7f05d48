"""Running ingest as an operator does: its metrics, retiring a replica, and the simulator
and ingest as two processes, on real Mosquitto and InfluxDB."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agrimatch.cli.wiring import build_ingest
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from agrimatch.settings import Settings
from tests.loadgen import (
    Publisher,
    assert_stored_exactly_once,
    make_messages,
    stored_count,
    wait_until,
)
from tests.services import MosquittoServer, free_port

pytestmark = pytest.mark.services


@pytest.fixture
def broker(tmp_path):
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


def cli_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    # Place check off unless a test turns it on: most publish from made-up device ids.
    return env | {"COLUMNS": "400", "AGRIMATCH_INGEST_CHECK_PLACE": "false"} | variables


@contextmanager
def ingest_process(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    """``agrimatch ingest`` in the background; SIGTERM (then SIGKILL) on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-m", "agrimatch", "ingest", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def scrape(port: int) -> dict[str, float]:
    """The samples of ``/metrics`` as ``{'name{labels}': value}`` ({} while it is not up)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_ingest_serves_its_counters_connection_and_last_stored_time_to_prometheus(
    broker, influx_store
):
    port = free_port()
    env = cli_env(
        AGRIMATCH_MQTT_URL=broker.url,
        AGRIMATCH_INFLUX_URL=influx_store.url,
        AGRIMATCH_INFLUX_DB=influx_store.database,
        AGRIMATCH_MQTT_CLIENT_ID="ingest-metrics",
        AGRIMATCH_INGEST_LINGER_MS="20",
        AGRIMATCH_INGEST_METRICS_PORT=str(port),
    )
    endpoint = MqttEndpoint.from_url(broker.url)
    messages = make_messages(2, 5, time.time() - 3600)
    with ingest_process(env):
        assert wait_until(lambda: scrape(port).get("agrimatch_ingest_connected") == 1, 60)
        before = time.time()
        publisher = Publisher(endpoint)
        publisher.publish_all(messages)
        topic = messages[0].address.telemetry_topic
        publisher.publish(topic, b"not json").wait_for_publish(10)
        publisher.publish(topic, b'[{"bn":"urn:dev:agrimatch:dev-0000:","n":"x","v":1}]')
        publisher.close()
        assert wait_until(
            lambda: scrape(port).get("agrimatch_ingest_messages_acked_total") == 12, 60
        )
        metrics = scrape(port)
        assert metrics["agrimatch_ingest_messages_received_total"] == 12
        assert metrics["agrimatch_ingest_readings_stored_total"] == 30
        assert metrics['agrimatch_ingest_dead_letters_total{reason="not_json"}'] == 1
        assert metrics['agrimatch_ingest_dead_letters_total{reason="unknown_sensor"}'] == 1
        assert metrics["agrimatch_ingest_last_stored_timestamp_seconds"] >= before - 1
        assert metrics["agrimatch_ingest_writer_alive"] == 1
        assert metrics["agrimatch_ingest_connects_total"] == 1
        broker.stop()
        assert wait_until(lambda: scrape(port).get("agrimatch_ingest_connected") == 0, 60)
        assert scrape(port)["agrimatch_ingest_disconnects_total"] == 1
        broker.start()
        assert wait_until(lambda: scrape(port).get("agrimatch_ingest_connected") == 1, 90)
    assert stored_count(influx_store) == 10


def test_metrics_are_off_unless_a_port_is_set():
    assert Settings().ingest_metrics_port is None


def _ingest(endpoint, store, client_id):
    settings = Settings(
        ingest_linger_ms=20,
        ingest_retry_initial_s=0.05,
        ingest_retry_max_s=0.5,
        ingest_check_place=False,  # made-up device ids, no registry
        ingest_subscription="shared",  # replicas splitting the load: what retiring is for
    )
    service = build_ingest(settings, store, endpoint=endpoint, client_id=client_id)
    service.start()
    assert service.connected.wait(20), f"{client_id} did not connect"
    return service


def _session_present(endpoint: MqttEndpoint, client_id: str) -> bool:
    """Whether the broker holds a session for ``client_id`` (and keeps it as it was)."""
    client = make_paho_client(endpoint, client_id, clean_start=False)
    answers: list[bool] = []
    client.on_connect = lambda c, u, flags, rc, p: answers.append(flags.session_present)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600  # an existing one stays; a new one is ended below
    client.connect(endpoint.host, endpoint.port, clean_start=False, properties=properties)
    client.loop_start()
    assert wait_until(lambda: bool(answers), 20)
    ended = Properties(PacketTypes.DISCONNECT)
    if not answers[0]:
        ended.SessionExpiryInterval = 0  # we made it: leave nothing behind
    client.disconnect(properties=ended)
    client.loop_stop()
    return answers[0]


def test_a_retired_replicas_session_gives_up_what_it_held_and_takes_no_more(broker, influx_store):
    endpoint = MqttEndpoint.from_url(broker.url)
    gone = _ingest(endpoint, influx_store, "ingest-gone")
    gone.stop()  # a replica run once with its own client id, then never again
    staying = _ingest(endpoint, influx_store, "ingest-staying")
    try:
        first = make_messages(10, 10, time.time() - 4 * 3600)
        publisher = Publisher(endpoint)
        publisher.publish_all(first)
        # The shared subscription still counts the gone replica: its share sits in its session.
        assert wait_until(lambda: staying.metrics.snapshot().messages_acked > 0, 30)
        retired = subprocess.run(
            [sys.executable, "-m", "agrimatch", "ingest", "--retire", "--client-id", "ingest-gone"],
            env=cli_env(
                AGRIMATCH_MQTT_URL=broker.url,
                AGRIMATCH_INFLUX_URL=influx_store.url,
                AGRIMATCH_INFLUX_DB=influx_store.database,
                AGRIMATCH_INGEST_SUBSCRIPTION="shared",
            ),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert retired.returncode == 0, retired.stderr
        said = re.search(r"session 'ingest-gone' retired: it held (\d+) message", retired.stdout)
        assert said, retired.stdout
        held = int(said.group(1))
        assert held > 0, "the broker gave the gone replica's session nothing"
        assert wait_until(lambda: stored_count(influx_store) == len(first), 30)
        # Each message of the first batch went to one of the two sessions, and none was lost.
        assert staying.metrics.snapshot().messages_acked + held == len(first)
        assert not _session_present(endpoint, "ingest-gone")
        # From now on every message goes to the replica that is there.
        acked_before = staying.metrics.snapshot().messages_acked
        second = make_messages(10, 5, time.time() - 2 * 3600)
        publisher.publish_all(second)
        publisher.close()
        assert wait_until(
            lambda: staying.metrics.snapshot().messages_acked == acked_before + len(second), 30
        )
        assert_stored_exactly_once(influx_store, first + second)
    finally:
        staying.stop()


def test_the_simulator_at_60x_and_a_separate_ingest_store_every_reading(
    broker, influx_store, tmp_path
):
    port = free_port()
    # The place check as by default: the simulator registers its fleet in the registry
    # (SQLite in the shared data dir) before publishing, so nothing is unknown_device.
    env = cli_env(
        AGRIMATCH_MQTT_URL=broker.url,
        AGRIMATCH_INFLUX_URL=influx_store.url,
        AGRIMATCH_INFLUX_DB=influx_store.database,
        AGRIMATCH_MQTT_CLIENT_ID="ingest-with-sim",
        AGRIMATCH_INGEST_METRICS_PORT=str(port),
        AGRIMATCH_DATA_DIR=str(tmp_path),
        AGRIMATCH_INGEST_CHECK_PLACE="true",
    )
    with ingest_process(env):
        assert wait_until(lambda: scrape(port).get("agrimatch_ingest_connected") == 1, 60)
        # As the README says to run it; 900 simulated seconds is 15 s of real time.
        sim = subprocess.run(
            [sys.executable, "-m", "agrimatch", "sim", "--scenario", "default", "--speed", "60",
             "--duration", "900"],
            env=cli_env(AGRIMATCH_MQTT_URL=broker.url, AGRIMATCH_DATA_DIR=str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
        assert sim.returncode == 0, sim.stderr
        readings = int(re.search(r"readings (\d+)", sim.stdout).group(1))  # type: ignore[union-attr]
        assert readings > 0
        stored = "agrimatch_ingest_readings_stored_total"
        assert wait_until(lambda: scrape(port).get(stored) == readings, 60), scrape(port)
        letters = {k: v for k, v in scrape(port).items() if "dead_letters_total" in k}
        assert letters == {}  # before: 92 % time_in_future at this speed
