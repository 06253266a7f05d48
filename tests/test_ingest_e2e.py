"""End to end on real services: simulated devices → Mosquitto → ingest → InfluxDB.

Each test gets its own Mosquitto (so no persistent session of an earlier test
takes a share of the messages) and its own InfluxDB database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as paho
import pytest

from agrimatch.cli.fleet_wiring import run_fleet_until
from agrimatch.cli.wiring import build_ingest
from agrimatch.clock import SimulatedClock
from agrimatch.contract.sensors import FIELD_NODE_SENSORS
from agrimatch.contract.telemetry import Reading
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.settings import Settings
from firmware_sim import plan_fleet
from tests.loadgen import (
    Publisher,
    Sent,
    assert_stored_exactly_once,
    make_messages,
    stored_count,
    wait_until,
)
from tests.services import MosquittoServer

pytestmark = pytest.mark.services


@pytest.fixture
def broker(tmp_path):
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def endpoint(broker) -> MqttEndpoint:
    return MqttEndpoint.from_url(broker.url)


def test_settings(**overrides) -> Settings:
    # These tests publish from made-up device ids no registry holds; the place check
    # (on by default) has its own tests: test_ingest_places.py and the fault suite.
    base = {
        "ingest_linger_ms": 50,
        "ingest_retry_initial_s": 0.05,
        "ingest_retry_max_s": 0.5,
        "ingest_check_place": False,
    }
    return Settings(**(base | overrides))


test_settings.__test__ = False  # a helper, not a test


@pytest.fixture
def start_ingest(endpoint, influx_store):
    started = []

    def _start(clock=None, client_id="ingest-under-test", **overrides):
        service = build_ingest(
            test_settings(**overrides),
            influx_store,
            endpoint=endpoint,
            clock=clock,
            client_id=client_id,
        )
        service.start()
        started.append(service)
        assert service.connected.wait(10), "ingest did not connect"
        return service

    yield _start
    for service in started:
        service.stop()


def test_every_reading_of_a_60_device_fleet_is_stored_exactly_once(
    endpoint, influx_store, start_ingest, tmp_path
):
    # Start in the past so the accelerated run stays behind real time.
    clock = SimulatedClock(time.time() - 3 * 3600, speed=600)
    # The place check on, as by default: the fleet registers itself before publishing.
    registry_url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    engine = make_engine(registry_url)
    migrate(engine)
    ingest = start_ingest(clock=clock, ingest_check_place=True, database_url=registry_url)
    ledger: dict[tuple[str, int], tuple[DeviceAddress, dict[str, float]]] = {}
    lock = threading.Lock()

    def on_publish(address: DeviceAddress, readings: list[Reading]) -> None:
        with lock:
            for r in readings:
                entry = ledger.setdefault((address.device, r.time_ms), (address, {}))
                entry[1][r.sensor] = r.value

    stats = run_fleet_until(
        endpoint,
        clock,
        plan_fleet(60, seed=7, interval_s=60),
        seed=7,
        duration_s=1800,
        stop=threading.Event(),
        on_publish=on_publish,
        registry=session_factory(engine),
    )
    engine.dispose()
    assert stats.devices == 60
    devices_heard = {device for device, _ in ledger}
    assert len(devices_heard) == 60
    expected = [Sent(address, t_ms, values, b"") for (_, t_ms), (address, values) in ledger.items()]
    readings = sum(len(v) for _, v in ledger.values())
    assert readings >= 60 * len(FIELD_NODE_SENSORS) * 10
    assert wait_until(lambda: ingest.metrics.snapshot().readings_stored >= readings, 60)
    assert_stored_exactly_once(influx_store, expected)
    assert ingest.metrics.snapshot().dead_letters == 0


@pytest.mark.faults
def test_a_redelivered_message_adds_no_point(endpoint, influx_store, start_ingest):
    ingest = start_ingest()
    [message] = make_messages(1, 1, time.time() - 600)
    publisher = Publisher(endpoint)
    publisher.publish_all([message, message])
    publisher.close()
    assert wait_until(lambda: ingest.metrics.snapshot().messages_acked == 2, 20)
    assert_stored_exactly_once(influx_store, [message])


@pytest.mark.faults
def test_garbage_goes_to_the_dead_letter_topic_and_the_good_messages_around_it_are_stored(
    endpoint, influx_store, start_ingest
):
    letters: list[paho.MQTTMessage] = []
    watcher = make_paho_client(endpoint, "dead-letter-watcher")
    watcher.on_message = lambda c, u, m: letters.append(m)
    watcher.connect(endpoint.host, endpoint.port)
    watcher.subscribe("agrimatch/v1/_dead/#", qos=1)
    watcher.loop_start()
    try:
        ingest = start_ingest()
        good = make_messages(3, 4, time.time() - 3600)
        publisher = Publisher(endpoint)
        publisher.publish_all(good[:6])
        topic = good[0].address.telemetry_topic
        bad = [b"\xff\x00 not json", b'{"n": "air_temp", "v": 1}', b"[]"]
        for payload in bad:
            publisher.publish(topic, payload).wait_for_publish(10)
        publisher.publish_all(good[6:])
        publisher.close()
        assert wait_until(lambda: len(letters) == 3, 20), [m.topic for m in letters]
        assert_stored_exactly_once(influx_store, good)
        reasons = sorted(m.topic.rsplit("/", 1)[1] for m in letters)
        assert reasons == ["not_json", "not_senml", "not_senml"]
        body = json.loads(letters[0].payload)
        assert body["topic"] == topic and body["reason"] and body["detail"]
        assert ingest.metrics.snapshot().messages_dead_lettered == 3
    finally:
        watcher.loop_stop()
        watcher.disconnect()


@pytest.mark.faults
def test_influxdb_down_under_load_loses_nothing_once_it_returns(
    endpoint, influx_server, influx_store, start_ingest
):
    ingest = start_ingest(ingest_max_inflight=500, ingest_batch_size=200)
    messages = make_messages(50, 60, time.time() - 6 * 3600)  # 3,000 messages
    publisher = Publisher(endpoint)
    first, second = messages[:1000], messages[1000:]
    publisher.publish_all(first)
    assert wait_until(lambda: ingest.metrics.snapshot().messages_acked >= 200, 20)
    influx_server.stop()
    try:
        publisher.publish_all(second, pause_every=200, pause_s=0.05)
        retries_before = ingest.metrics.snapshot().store_retries
        assert wait_until(lambda: ingest.metrics.snapshot().store_retries > retries_before, 20)
        acked_during_outage = ingest.metrics.snapshot().messages_acked
        time.sleep(1.0)
        # Nothing is acknowledged while nothing can be stored.
        assert ingest.metrics.snapshot().messages_acked == acked_during_outage
    finally:
        influx_server.start()
    publisher.close()
    assert wait_until(lambda: ingest.metrics.snapshot().messages_acked >= len(messages), 60)
    assert_stored_exactly_once(influx_store, messages)


def _ingest_process(broker, influx_server, database: str) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "AGRIMATCH_MQTT_URL": broker.url,
        "AGRIMATCH_INFLUX_URL": influx_server.url,
        "AGRIMATCH_INFLUX_DB": database,
        "AGRIMATCH_MQTT_CLIENT_ID": "ingest-sigkill",
        "AGRIMATCH_INGEST_LINGER_MS": "20",
        "AGRIMATCH_INGEST_BATCH_SIZE": "100",
        "AGRIMATCH_INGEST_STATS_INTERVAL_S": "1",
        "AGRIMATCH_INGEST_CHECK_PLACE": "false",  # made-up device ids, no registry
    }
    return subprocess.Popen(
        [sys.executable, "-m", "agrimatch", "ingest"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.faults
def test_ingest_killed_with_sigkill_mid_stream_and_restarted_loses_nothing(
    broker, endpoint, influx_server, influx_store
):
    database = influx_store.database
    messages = make_messages(40, 50, time.time() - 5 * 3600)  # 2,000 messages
    process = _ingest_process(broker, influx_server, database)
    try:
        publisher = Publisher(endpoint)
        # The broker keeps messages only for sessions that exist: wait until the
        # ingest process has subscribed (its first message is stored).
        assert wait_until(
            lambda: publisher.publish_all(messages[:1]) or stored_count(influx_store) > 0, 30, 0.5
        ), "ingest never subscribed"
        sender = threading.Thread(
            target=publisher.publish_all,
            args=(messages,),
            kwargs={"pause_every": 50, "pause_s": 0.02},
        )
        sender.start()
        assert wait_until(lambda: stored_count(influx_store) >= 200, 30), "ingest stored nothing"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed_at = stored_count(influx_store)
        sender.join(60)
        publisher.close()
        assert killed_at < len(messages), "the kill came too late to be mid-stream"
        process = _ingest_process(broker, influx_server, database)
        assert wait_until(lambda: stored_count(influx_store) >= len(messages), 60)
        assert_stored_exactly_once(influx_store, messages)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.faults
def test_graceful_shutdown_stores_and_acknowledges_what_has_arrived(
    endpoint, influx_store, start_ingest
):
    # A long linger keeps the messages waiting in ingest when stop() comes.
    ingest = start_ingest(ingest_linger_ms=30_000, ingest_batch_size=50_000)
    messages = make_messages(10, 30, time.time() - 4 * 3600)
    publisher = Publisher(endpoint)
    publisher.publish_all(messages)
    publisher.close()
    time.sleep(0.5)
    assert stored_count(influx_store) == 0
    ingest.stop()
    assert_stored_exactly_once(influx_store, messages)
    # Acknowledged: the same session, resumed, gets nothing redelivered.
    again = start_ingest()
    time.sleep(1.0)
    assert again.metrics.snapshot().messages_received == 0


@pytest.mark.faults
def test_ingest_reconnects_after_a_broker_restart_and_loses_nothing(
    broker, endpoint, influx_store, start_ingest
):
    ingest = start_ingest()
    messages = make_messages(20, 20, time.time() - 4 * 3600)
    publisher = Publisher(endpoint)
    publisher.publish_all(messages[:200])
    publisher.close()
    assert wait_until(lambda: ingest.metrics.snapshot().messages_acked >= 200, 20)
    broker.stop()
    assert wait_until(lambda: not ingest.connected.is_set(), 10)
    broker.start()
    assert ingest.connected.wait(40), "ingest did not reconnect"
    publisher = Publisher(endpoint)
    publisher.publish_all(messages[200:])
    publisher.close()
    assert wait_until(lambda: stored_count(influx_store) >= len(messages), 30)
    assert_stored_exactly_once(influx_store, messages)


def test_sim_command_publishes_birth_statuses_and_telemetry(broker, endpoint, tmp_path):
    seen: dict[str, list[bytes]] = {"status": [], "telemetry": []}
    watcher = make_paho_client(endpoint, "sim-watcher")
    watcher.on_message = lambda c, u, m: seen[m.topic.rsplit("/", 1)[1]].append(m.payload)
    watcher.connect(endpoint.host, endpoint.port)
    watcher.subscribe([("agrimatch/v1/+/+/+/status", 1), ("agrimatch/v1/+/+/+/telemetry", 1)])
    watcher.loop_start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
        env["AGRIMATCH_MQTT_URL"] = broker.url
        env["AGRIMATCH_DATA_DIR"] = str(tmp_path)  # where the sim registers its devices
        args = ["--devices", "3", "--speed", "600", "--interval", "60", "--duration", "1200"]
        result = subprocess.run(
            [sys.executable, "-m", "agrimatch", "sim", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert wait_until(lambda: len(seen["telemetry"]) >= 60, 10)
        assert len(seen["telemetry"]) == 60  # 3 devices x 1200 s / 60 s
        states = [json.loads(p)["state"] for p in seen["status"]]
        assert states.count("online") >= 3 and states.count("offline") >= 3
    finally:
        watcher.loop_stop()
        watcher.disconnect()


def test_two_ingest_replicas_split_the_shared_subscription_without_loss(
    endpoint, influx_store, start_ingest
):
    first = start_ingest(client_id="ingest-a", ingest_subscription="shared")
    second = start_ingest(client_id="ingest-b", ingest_subscription="shared")
    messages = make_messages(30, 20, time.time() - 4 * 3600)
    publisher = Publisher(endpoint)
    publisher.publish_all(messages)
    publisher.close()

    def total():
        return first.metrics.snapshot().messages_acked + second.metrics.snapshot().messages_acked

    assert wait_until(lambda: total() >= len(messages), 30)
    assert first.metrics.snapshot().messages_acked > 0
    assert second.metrics.snapshot().messages_acked > 0
    assert total() == len(messages)  # each message went to one replica only
    assert_stored_exactly_once(influx_store, messages)


class _PasswordMosquitto(MosquittoServer):
    """Mosquitto that refuses anonymous clients (password file made with mosquitto_passwd)."""

    def _config(self) -> str:
        passwords = self.root / "passwd"
        passwords.write_text("")
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwords), "ingest", "s3cret:pw@x"], check=True
        )
        return (
            super()._config().replace("allow_anonymous true", "allow_anonymous false")
            + f"password_file {passwords}\n"
        )


def test_ingest_logs_in_with_the_credentials_in_the_url(tmp_path, influx_store):
    server = _PasswordMosquitto(tmp_path / "secured")
    server.start()
    try:
        good = MqttEndpoint.from_url(f"mqtt://ingest:s3cret%3Apw%40x@127.0.0.1:{server.port}")
        bad = MqttEndpoint.from_url(f"mqtt://ingest:wrong@127.0.0.1:{server.port}")
        refused = build_ingest(test_settings(), influx_store, endpoint=bad, client_id="i-bad")
        refused.start()
        assert not refused.connected.wait(2)
        refused.stop()
        service = build_ingest(test_settings(), influx_store, endpoint=good, client_id="i-good")
        service.start()
        try:
            assert service.connected.wait(10)
            assert "s3cret" not in repr(good)
        finally:
            service.stop()
    finally:
        server.stop()


class _TlsMosquitto(MosquittoServer):
    """Mosquitto with only a TLS listener, its certificate signed by a CA made here."""

    def _config(self) -> str:
        tls = self.root / "tls"
        tls.mkdir(exist_ok=True)
        self.ca_file = tls / "ca.crt"

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tls)

        openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=agrimatch test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        )
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        )
        (tls / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        openssl(
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        )
        return (
            super()._config()
            + f"cafile {tls / 'ca.crt'}\n"
            + f"certfile {tls / 'server.crt'}\nkeyfile {tls / 'server.key'}\n"
        )


def test_ingest_connects_over_mqtts_with_the_configured_ca(tmp_path, influx_store):
    server = _TlsMosquitto(tmp_path / "tls-broker")
    server.start()
    try:
        url = f"mqtts://127.0.0.1:{server.port}"
        untrusted = build_ingest(
            test_settings(), influx_store, endpoint=MqttEndpoint.from_url(url), client_id="i-no-ca"
        )
        untrusted.start()
        assert not untrusted.connected.wait(2)  # the test CA is not in the system store
        untrusted.stop()
        settings = test_settings(mqtt_url=url, mqtt_ca_file=server.ca_file)
        service = build_ingest(settings, influx_store, client_id="i-tls")
        service.start()
        try:
            assert service.connected.wait(10)
            [message] = make_messages(1, 1, time.time() - 600)
            publisher_endpoint = MqttEndpoint.from_settings(settings)
            publisher = Publisher(publisher_endpoint)
            publisher.publish_all([message])
            publisher.close()
            assert wait_until(lambda: stored_count(influx_store) == 1, 10)
        finally:
            service.stop()
    finally:
        server.stop()
