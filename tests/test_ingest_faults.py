"""Ingest never stalls silently: hostile input and dead ends, on real Mosquitto and InfluxDB.

Oversized payloads go through the C client ``mosquitto_pub``, as they were
reproduced; the shipped ``deploy/mosquitto.conf`` is loaded as it is, with
only its paths and port made local. Every wait polls for a condition with a
generous bound, so a loaded machine is slower, not failing.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest

from agrimatch.broker_access import device_acl
from agrimatch.cli.wiring import build_ingest
from agrimatch.contract.telemetry import MAX_PAYLOAD_BYTES, base_name
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from agrimatch.settings import Settings
from agrimatch.store.influx import InfluxStore, quote_string
from ingest.deadletter import MAX_LETTER_BYTES
from ingest.mqtt_consumer import MqttIngest
from tests.loadgen import (
    Publisher,
    Sent,
    assert_stored_exactly_once,
    make_messages,
    stored_count,
    wait_until,
)
from tests.services import InfluxServer, MosquittoServer, find_binary, free_port

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[1]
HUGE_BYTES = 48_234_496  # the report's payload: 46 MiB of 0x01
INGEST_PASSWORD = "ingest-pw"
DEVICE_PASSWORD = "device-pw"


def quick_settings(**overrides) -> Settings:
    # Made-up device ids no registry holds: the place check (on by default) is tested in
    # test_ingest_places.py and the fault suite.
    base = {
        "ingest_linger_ms": 50,
        "ingest_retry_initial_s": 0.05,
        "ingest_retry_max_s": 0.5,
        "ingest_check_place": False,
    }
    return Settings(**(base | overrides))


def cli_env(**variables: str) -> dict[str, str]:
    """The environment of an ``agrimatch`` subprocess: no AGRIMATCH_* of ours, wide output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    # Wide: rich must not wrap a message (a test reads it whole).
    # Place check off: made-up device ids, no registry (as quick_settings).
    fixed = {"AGRIMATCH_INGEST_STATS_INTERVAL_S": "1", "AGRIMATCH_INGEST_CHECK_PLACE": "false"}
    return env | {"COLUMNS": "400"} | fixed | variables


def huge_file(tmp_path: Path) -> Path:
    path = tmp_path / "p.bin"
    with path.open("wb") as out:
        chunk = b"\x01" * (1 << 20)
        for _ in range(HUGE_BYTES // len(chunk)):
            out.write(chunk)
    assert path.stat().st_size == HUGE_BYTES
    return path


def mosquitto_pub(
    port: int, topic: str, *, file: Path | None = None, message: bytes | None = None, **login: str
) -> subprocess.CompletedProcess[bytes]:
    """One QoS 1 publish with the C client, as a device (or an attacker) would."""
    command = [find_binary("mosquitto_pub", "mosquitto-clients"), "-h", "127.0.0.1"]
    command += ["-p", str(port), "-q", "1", "-t", topic]
    if "user" in login:
        command += ["-u", login["user"], "-P", login["password"]]
    command += ["-f", str(file)] if file is not None else ["-s"]
    return subprocess.run(command, input=message, capture_output=True, timeout=120)


class DeadLetterWatcher:
    """Subscribes to every dead-letter topic and keeps what arrives."""

    def __init__(self, endpoint: MqttEndpoint) -> None:
        self.letters: list[paho.MQTTMessage] = []
        self.client = make_paho_client(endpoint, "dead-letter-watcher")
        self.client.on_message = lambda c, u, m: self.letters.append(m)
        self.client.connect(endpoint.host, endpoint.port)
        self.client.subscribe("agrimatch/v1/_dead/#", qos=1)
        self.client.loop_start()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path):
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def started(influx_store):
    """``start(endpoint, **settings)``: an ingest service into ``influx_store``, connected."""
    services: list[MqttIngest] = []

    def start(endpoint: MqttEndpoint, client_id: str = "ingest-under-test", **overrides):
        service = build_ingest(
            quick_settings(**overrides), influx_store, endpoint=endpoint, client_id=client_id
        )
        service.start()
        services.append(service)
        assert service.connected.wait(20), "ingest did not connect"
        return service

    yield start
    for service in services:
        service.stop()


# --- oversized input ---------------------------------------------------------------------------


@pytest.mark.faults
def test_a_46_mib_payload_is_one_small_dead_letter_and_later_messages_are_stored(
    broker, influx_store, started, tmp_path
):
    # The test broker has no size limit (as the shipped config had none): ingest gets it.
    endpoint = MqttEndpoint.from_url(broker.url)
    watcher = DeadLetterWatcher(endpoint)
    try:
        ingest = started(endpoint)
        good = make_messages(1, 6, time.time() - 3600)
        topic = good[0].address.telemetry_topic
        for sent in good[:3]:
            assert mosquitto_pub(broker.port, topic, message=sent.payload).returncode == 0
        published = mosquitto_pub(broker.port, topic, file=huge_file(tmp_path))
        assert published.returncode == 0, published.stderr
        for sent in good[3:]:
            assert mosquitto_pub(broker.port, topic, message=sent.payload).returncode == 0
        assert wait_until(lambda: stored_count(influx_store) == 6, 60), ingest.metrics.snapshot()
        assert_stored_exactly_once(influx_store, good)
        assert wait_until(lambda: len(watcher.letters) == 1, 30)
        [letter] = watcher.letters
        assert letter.topic == "agrimatch/v1/_dead/too_large"
        assert len(letter.payload) <= 4096  # was ~276 MB, which paho cannot even publish
        body = json.loads(letter.payload)
        assert body["payload_bytes"] == HUGE_BYTES and body["truncated"] is True
        assert wait_until(lambda: ingest.metrics.snapshot().messages_acked == 7, 30)
        assert ingest.failure is None and ingest.writer_alive
    finally:
        watcher.close()


class _PacketLimitedMosquitto(MosquittoServer):
    """A broker that disconnects any client sending a packet over 1,000,000 bytes."""

    def _config(self) -> str:
        return super()._config() + "max_packet_size 1000000\n"


@pytest.mark.faults
def test_a_65_kb_pack_of_4000_unknown_sensors_does_not_cut_ingest_off_a_1_mb_packet_broker(
    tmp_path, influx_store, started
):
    # Before: its 1.06 MB dead letter made the broker disconnect ingest once a second,
    # forever, and nothing after it was stored.
    server = _PacketLimitedMosquitto(tmp_path / "limited")
    server.start()
    try:
        endpoint = MqttEndpoint.from_url(server.url)
        watcher = DeadLetterWatcher(endpoint)
        ingest = started(endpoint)
        good = make_messages(1, 4, time.time() - 3600)
        device = good[0].address.device
        pack = [{"bn": base_name(device), "bt": time.time() - 60, "n": "x", "v": 1}]
        pack += [{"n": "x", "v": 1}] * 3999
        payload = json.dumps(pack, separators=(",", ":")).encode()
        assert 60_000 < len(payload) <= MAX_PAYLOAD_BYTES
        publisher = Publisher(endpoint)
        publisher.publish_all(good[:2])
        publisher.publish(good[0].address.telemetry_topic, payload).wait_for_publish(30)
        publisher.publish_all(good[2:])
        publisher.close()
        assert wait_until(lambda: stored_count(influx_store) == 4, 60), ingest.metrics.snapshot()
        assert wait_until(lambda: len(watcher.letters) == 1, 30)
        body = json.loads(watcher.letters[0].payload)
        assert len(watcher.letters[0].payload) <= MAX_LETTER_BYTES
        assert body["records_total"] == 4000 and len(body["records"]) == 20
        assert ingest.metrics.snapshot().disconnects == 0
        watcher.close()
    finally:
        server.stop()


class ShippedConfigMosquitto(MosquittoServer):
    """Mosquitto on ``deploy/mosquitto.conf`` as shipped: only the port, the paths of the
    password, ACL and persistence files and the process user are made local."""

    def _config(self) -> str:
        shipped = (REPO / "deploy" / "mosquitto.conf").read_text()
        passwords = self.root / "passwd"
        passwords.write_text("")
        for user, password in (("ingest", INGEST_PASSWORD), ("dev-0000", DEVICE_PASSWORD)):
            subprocess.run(
                [
                    find_binary("mosquitto_passwd", "mosquitto"),
                    "-b",
                    str(passwords),
                    user,
                    password,
                ],
                check=True,
            )
        acl = self.root / "acl"
        # The shipped roles, and the device's own section as `devices provision` writes it.
        device = DeviceAddress("farm-0", "field-0", "dev-0000")  # make_messages' first device
        acl.write_text((REPO / "deploy" / "mosquitto.acl").read_text() + device_acl([device]))
        local = {
            "listener 1883": f"listener {self.port} 127.0.0.1",
            "password_file /mosquitto/config/passwd": f"password_file {passwords}",
            "acl_file /mosquitto/config/acl": f"acl_file {acl}",
            "persistence_location /mosquitto/data/": (
                f"persistence_location {self.persistence_dir}/"
            ),
        }
        for line in local:
            assert line in shipped.splitlines(), f"deploy/mosquitto.conf lost {line!r}"
            shipped = shipped.replace(line, local[line])
        user = pwd.getpwuid(os.getuid()).pw_name
        return shipped + f"\nuser {user}\nlog_dest file {self.log_path}\nlog_type all\n"


def test_the_shipped_broker_config_refuses_a_46_mib_publish_while_ingest_keeps_storing(
    tmp_path, influx_store, started
):
    shipped = (REPO / "deploy" / "mosquitto.conf").read_text()
    limits = dict(re.findall(r"^(message_size_limit|max_packet_size) (\d+)$", shipped, re.M))
    # The 64 KiB contract, plus headroom for packs ingest should see and dead-letter.
    assert MAX_PAYLOAD_BYTES < int(limits["message_size_limit"]) < HUGE_BYTES
    assert int(limits["message_size_limit"]) < int(limits["max_packet_size"]) < 1024 * 1024
    server = ShippedConfigMosquitto(tmp_path / "shipped")
    server.start()
    try:
        endpoint = MqttEndpoint.from_url(f"mqtt://ingest:{INGEST_PASSWORD}@127.0.0.1:{server.port}")
        ingest = started(endpoint, client_id="ingest-shipped")
        good = make_messages(1, 6, time.time() - 3600)  # device dev-0000, its own topic
        topic = good[0].address.telemetry_topic
        device = {"user": "dev-0000", "password": DEVICE_PASSWORD}

        def publish(sent: Sent) -> None:
            assert mosquitto_pub(server.port, topic, message=sent.payload, **device).returncode == 0

        for sent in good[:3]:
            publish(sent)
        refused = mosquitto_pub(server.port, topic, file=huge_file(tmp_path), **device)
        assert refused.returncode != 0, "the broker took a 46 MiB publish"
        # Over the contract but within the broker's headroom: ingest sees it and says why.
        over = b"[" + b" " * (MAX_PAYLOAD_BYTES + 10) + b"]"
        assert mosquitto_pub(server.port, topic, message=over, **device).returncode == 0
        for sent in good[3:]:
            publish(sent)
        assert wait_until(lambda: stored_count(influx_store) == 6, 60), ingest.metrics.snapshot()
        assert_stored_exactly_once(influx_store, good)
        assert wait_until(lambda: ingest.metrics.snapshot().messages_acked == 7, 30)
        snapshot = ingest.metrics.snapshot()
        assert snapshot.messages_received == 7  # the 46 MiB never reached ingest
        assert snapshot.dead_letters_by_reason == {"too_large": 1}
        assert snapshot.disconnects == 0 and ingest.failure is None
    finally:
        server.stop()


# --- failures retrying cannot fix --------------------------------------------------------------


@pytest.fixture(scope="module")
def secured_influx(tmp_path_factory):
    """InfluxDB with auth on and an admin whose password the test knows."""
    server = InfluxServer(tmp_path_factory.mktemp("influxdb-auth"), auth=True)
    server.start()
    try:
        password = "right-pw-4f1c"
        admin = f"CREATE USER admin WITH PASSWORD {quote_string(password)} WITH ALL PRIVILEGES"
        assert httpx.post(f"{server.url}/query", data={"q": admin}).status_code == 200
        yield server, password
    finally:
        server.stop()


@pytest.mark.faults
def test_influxdb_refusing_the_credentials_ends_the_service_and_the_message_waits(
    broker, secured_influx
):
    server, password = secured_influx
    endpoint = MqttEndpoint.from_url(broker.url)
    database = "faults_auth"
    wrong = InfluxStore(server.url, database, username="admin", password="wrong-pw-9d2e")
    service = build_ingest(quick_settings(), wrong, endpoint=endpoint, client_id="ingest-auth")
    service.start()
    try:
        assert service.connected.wait(20)
        [message] = make_messages(1, 1, time.time() - 600)
        publisher = Publisher(endpoint)
        publisher.publish_all([message])
        publisher.close()
        assert service.failed.wait(60), "a refused write left the service running"
        assert "401" in (service.failure or "") and "wrong-pw" not in (service.failure or "")
        assert not service.writer_alive and service.metrics.snapshot().messages_acked == 0
    finally:
        service.stop()
        wrong.close()
    # Not acknowledged: the session gives it to a replica with the right password.
    right = InfluxStore(server.url, database, username="admin", password=password)
    again = build_ingest(quick_settings(), right, endpoint=endpoint, client_id="ingest-auth")
    again.start()
    try:
        assert wait_until(lambda: stored_count(right) == 1, 60)
        assert_stored_exactly_once(right, [message])
    finally:
        again.stop()
        right.close()


def test_the_ingest_command_exits_1_with_one_line_when_influxdb_refuses_the_credentials(
    broker, secured_influx
):
    server, _ = secured_influx
    env = cli_env(
        AGRIMATCH_MQTT_URL=broker.url,
        AGRIMATCH_INFLUX_URL=server.url,
        AGRIMATCH_INFLUX_USERNAME="admin",
        AGRIMATCH_INFLUX_PASSWORD="wrong-pw-9d2e",
    )
    done = subprocess.run(
        [sys.executable, "-m", "agrimatch", "ingest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert "HTTP 401" in line and "AGRIMATCH_INFLUX_PASSWORD" in line
    assert "wrong-pw" not in done.stdout + done.stderr


@pytest.mark.faults
def test_the_ingest_command_exits_1_when_influxdb_refuses_a_write_after_a_good_start(
    broker, secured_influx
):
    server, password = secured_influx
    database = "faults_revoked"

    def as_admin(statement: str) -> None:
        answer = httpx.post(f"{server.url}/query", data={"q": statement}, auth=("admin", password))
        assert answer.status_code == 200 and "error" not in answer.text, answer.text

    as_admin(f"CREATE DATABASE {database}")
    as_admin("CREATE USER writer WITH PASSWORD 'writer-pw-31a7'")
    as_admin(f"GRANT ALL ON {database} TO writer")
    env = cli_env(
        AGRIMATCH_MQTT_URL=broker.url,
        AGRIMATCH_MQTT_CLIENT_ID="ingest-revoked",
        AGRIMATCH_INFLUX_URL=server.url,
        AGRIMATCH_INFLUX_DB=database,
        AGRIMATCH_INFLUX_USERNAME="writer",
        AGRIMATCH_INFLUX_PASSWORD="writer-pw-31a7",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "agrimatch", "ingest"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoint = MqttEndpoint.from_url(broker.url)
        publisher = Publisher(endpoint)
        messages = make_messages(1, 2, time.time() - 600)
        first_store = InfluxStore(server.url, database, username="admin", password=password)
        # Started and subscribed once its first message is stored.
        assert wait_until(
            lambda: publisher.publish_all(messages[:1]) or stored_count(first_store) == 1, 60, 0.5
        ), "ingest never stored its first message"
        first_store.close()
        as_admin("DROP USER writer")  # its credentials are refused from now on
        publisher.publish_all(messages[1:])
        publisher.close()
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1, err[-2000:]
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert "ingest stopped" in line and "HTTP 401" in line and "writer-pw" not in out + err


class _BrokenSink:
    def send(self, letters, stop):
        raise RuntimeError("the dead-letter sender has a bug")


@pytest.mark.faults
def test_a_bug_in_the_writer_ends_the_service_with_its_reason(broker, influx_store):
    from agrimatch.clock import RealClock
    from ingest.pipeline import TelemetryPipeline

    endpoint = MqttEndpoint.from_url(broker.url)
    service = MqttIngest(
        endpoint,
        lambda sink: TelemetryPipeline(influx_store, _BrokenSink(), RealClock()),
    )
    stop = threading.Event()
    outcome: list[str | None] = []
    runner = threading.Thread(target=lambda: outcome.append(service.run_until(stop)))
    runner.start()
    try:
        assert service.connected.wait(20)
        publisher = Publisher(endpoint)
        topic = make_messages(1, 1, time.time())[0].address.telemetry_topic
        publisher.publish(topic, b"not json").wait_for_publish(10)
        publisher.close()
        runner.join(60)
        assert not runner.is_alive(), "the service went on without its writer"
        assert outcome == [service.failure]
        assert "RuntimeError: the dead-letter sender has a bug" in (service.failure or "")
    finally:
        stop.set()
        runner.join(30)


# --- the broker not there ----------------------------------------------------------------------


def test_the_ingest_command_exits_1_naming_the_broker_when_it_is_unreachable(tmp_path):
    port = free_port()  # nobody listens there
    env = cli_env(
        AGRIMATCH_MQTT_URL=f"mqtt://ingest:s3cret-pw@127.0.0.1:{port}",
        AGRIMATCH_DATA_DIR=str(tmp_path),
        AGRIMATCH_INGEST_CONNECT_TIMEOUT_S="3",
    )
    done = subprocess.run(
        [sys.executable, "-m", "agrimatch", "ingest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "cannot reach the MQTT broker" in done.stderr  # each failed attempt, with the reason
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert f"mqtt://ingest@127.0.0.1:{port}" in line and "Connection refused" in line
    assert "AGRIMATCH_MQTT_URL" in line
    assert "s3cret-pw" not in done.stdout + done.stderr


def test_the_sim_command_exits_1_with_one_line_when_the_broker_is_unreachable(tmp_path):
    port = free_port()
    env = cli_env(AGRIMATCH_MQTT_URL=f"mqtt://127.0.0.1:{port}", AGRIMATCH_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "agrimatch", "sim", "--devices", "2", "--duration", "600"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "messages 0" not in done.stdout
    [line] = done.stderr.strip().splitlines()
    assert f"cannot reach the MQTT broker at mqtt://127.0.0.1:{port}" in line
    assert "AGRIMATCH_MQTT_URL" in line
