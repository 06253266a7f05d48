"""Device identity on the broker: Mosquitto hashes, and the ACL written from the registry.

The broker is a real Mosquitto 2.0 loading the password file and ACL that
``write_broker_files`` made from a registry; every check is what a device,
a service or an attacker would see on the wire. A denied publish is silent
in MQTT (the broker drops it), so each one is followed by an allowed publish
on the same path: once the allowed one has arrived, the denied one never will.
"""

from __future__ import annotations

import queue
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.broker_access import (
    BrokerAccessError,
    ServiceUsers,
    acl_file,
    hash_password,
    password_file,
    password_matches,
)
from agrimatch.contract.topics import DeviceAddress
from agrimatch.registry import make_engine, migrate, session_factory, upsert_scenario
from agrimatch.registry.audit import entries
from agrimatch.registry.broker_files import BrokerFiles, write_broker_files
from agrimatch.scenario import parse_scenario
from tests.api.conftest import DEVICE_A, DEVICE_B, DEVICE_C, SCENARIO
from tests.services import MosquittoServer, find_binary

pytestmark = pytest.mark.services

WAIT_S = 20.0


# -- the hash format ------------------------------------------------------------------


def test_a_line_made_by_debians_mosquitto_passwd_verifies_here(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("")
    tool = find_binary("mosquitto_passwd", "mosquitto")
    subprocess.run([tool, "-b", str(path), "alice", "s3cret pw"], check=True)
    user, hashed = path.read_text().strip().split(":", 1)
    assert user == "alice"
    assert password_matches("s3cret pw", hashed)
    assert not password_matches("s3cret pX", hashed)


def test_a_hash_has_mosquittos_shape_12_byte_salt_and_64_byte_digest() -> None:
    hashed = hash_password("pw")
    empty, seven, iterations, salt, digest = hashed.split("$")
    assert (empty, seven, iterations) == ("", "7", "101")
    assert len(salt) == 16 and len(digest) == 88  # base64 of 12 and 64 bytes
    assert hash_password("pw") != hashed  # a fresh salt each time
    assert password_matches("pw", hashed)


def test_a_username_that_could_write_another_acl_line_is_refused() -> None:
    with pytest.raises(BrokerAccessError):
        password_file([("evil\nuser ingest", hash_password("x"))])
    with pytest.raises(BrokerAccessError):
        password_file([("a:b", hash_password("x"))])
    with pytest.raises(BrokerAccessError):
        acl_file([DeviceAddress("farm1", "north", "dev-a")], ServiceUsers(ingest="x\ntopic #"))


def test_the_acl_has_no_pattern_a_device_could_fill_with_another_place() -> None:
    text = acl_file([DeviceAddress("farm1", "north", "dev-a")])
    assert "pattern" not in text and "%u" not in text
    assert "topic write agrimatch/v1/farm1/north/dev-a/telemetry" in text
    assert "topic read agrimatch/v1/farm1/north/dev-a/config" in text


# -- the real broker on files written from a registry ----------------------------------


class ProvisionedMosquitto(MosquittoServer):
    """Mosquitto with no anonymous access, on a password file and ACL made elsewhere."""

    def __init__(self, root: Path, files: BrokerFiles) -> None:
        self.files = files
        super().__init__(root)

    def _config(self) -> str:
        return (
            super()._config().replace("allow_anonymous true", "allow_anonymous false")
            + f"password_file {self.files.password_file}\nacl_file {self.files.acl_file}\n"
        )


@pytest.fixture
def registry(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        upsert_scenario(session, parse_scenario(SCENARIO))
    return sessions


@pytest.fixture
def files(registry: sessionmaker[Session], tmp_path: Path) -> BrokerFiles:
    with registry.begin() as session:
        return write_broker_files(session, tmp_path / "broker", actor="test")


@pytest.fixture
def broker(tmp_path: Path, files: BrokerFiles) -> Iterator[ProvisionedMosquitto]:
    server = ProvisionedMosquitto(tmp_path / "mosquitto", files)
    server.start()
    yield server
    server.stop()


def password_of(files: BrokerFiles, user: str) -> str:
    folder = "services" if user in ("ingest", "operator", "publisher") else "devices"
    return (files.password_file.parent / folder / f"{user}.password").read_text().strip()


class Client:
    """A connected paho client that keeps what it receives in a queue."""

    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}"
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.code: paho.ReasonCode | None = None
        self.client.on_connect = self._on_connect
        self.subacks: queue.Queue[int] = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, codes, props: self.subacks.put(mid)
        self.connected = queue.Queue[bool]()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, userdata: object, flags, code, props) -> None:  # type: ignore[no-untyped-def]
        self.connected.put(not code.is_failure)

    def accepted(self) -> bool:
        try:
            return self.connected.get(timeout=WAIT_S)
        except queue.Empty:
            return False

    def subscribe(self, topic: str) -> None:
        """Subscribe and wait for the SUBACK: a publish from another client after it is seen."""
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == paho.MQTT_ERR_SUCCESS
        assert self.subacks.get(timeout=WAIT_S) == mid

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT_S)

    def received_until(self, marker: bytes) -> list[tuple[str, bytes]]:
        """Everything received up to and including ``marker`` (fails if it never comes)."""
        got = []
        while True:
            topic, payload = self.messages.get(timeout=WAIT_S)
            got.append((topic, payload))
            if payload == marker:
                return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def connect(broker: ProvisionedMosquitto, files: BrokerFiles) -> Iterator:  # type: ignore[type-arg]
    opened: list[Client] = []

    def _connect(user: str | None, password: str | None = None) -> Client:
        if user is not None and password is None:
            password = password_of(files, user)
        client = Client(broker.port, user, password)
        opened.append(client)
        return client

    yield _connect
    for client in opened:
        client.close()


def topic(device: str, kind: str, farm: str = "garlic-coop-1", field: str = "north") -> str:
    return f"agrimatch/v1/{farm}/{field}/{device}/{kind}"


def test_a_device_logs_in_with_its_password_and_not_with_a_wrong_one(connect, files) -> None:
    assert connect(DEVICE_A).accepted()
    assert not connect(DEVICE_A, "wrong-password").accepted()
    assert not connect(DEVICE_B, password_of(files, DEVICE_A)).accepted()


def test_a_line_made_here_lets_the_broker_accept_the_right_password_only(
    tmp_path: Path,
) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    passwd.write_text(password_file([("alice", hash_password("right-pw"))]))
    acl.write_text("user alice\ntopic read x\n")
    server = ProvisionedMosquitto(tmp_path / "m", BrokerFiles(passwd, acl))
    server.start()
    try:
        right, wrong = Client(server.port, "alice", "right-pw"), Client(server.port, "alice", "w")
        assert right.accepted() and not wrong.accepted()
        right.close()
        wrong.close()
    finally:
        server.stop()


def test_anonymous_is_refused(connect) -> None:
    assert not connect(None).accepted()


def test_device_a_cannot_publish_as_b_nor_under_another_place(connect) -> None:
    ingest = connect("ingest")
    assert ingest.accepted()
    ingest.subscribe("$share/ingest/agrimatch/v1/+/+/+/telemetry")
    ingest.subscribe("agrimatch/v1/+/+/+/telemetry")
    device = connect(DEVICE_A)
    assert device.accepted()
    device.publish(topic(DEVICE_B, "telemetry"), b"as-b")
    device.publish(topic(DEVICE_A, "telemetry", "garlic-coop-2", "east"), b"elsewhere")
    device.publish(topic(DEVICE_A, "telemetry", "farm9", "field9"), b"farm9")
    device.publish(topic(DEVICE_A, "telemetry"), b"own")
    got = ingest.received_until(b"own")
    assert {payload for _, payload in got} == {b"own"}


def test_device_a_cannot_read_bs_config_and_reads_its_own(connect) -> None:
    device = connect(DEVICE_A)
    assert device.accepted()
    device.subscribe(topic(DEVICE_B, "config"))
    device.subscribe(topic(DEVICE_A, "config"))
    device.subscribe("agrimatch/v1/#")  # a wildcard gives nothing more
    publisher = connect("publisher")
    assert publisher.accepted()
    publisher.publish(topic(DEVICE_B, "config"), b"for-b", retain=True)
    publisher.publish(topic(DEVICE_A, "config"), b"for-a", retain=True)
    got = device.received_until(b"for-a")
    assert [payload for _, payload in got] == [b"for-a"]


def test_ingest_reads_telemetry_and_writes_dead_letters_operator_reads_them_and_status(
    connect,
) -> None:
    operator = connect("operator")
    assert operator.accepted()
    operator.subscribe("agrimatch/v1/_dead/#")
    operator.subscribe("agrimatch/v1/+/+/+/status")
    operator.subscribe(topic(DEVICE_A, "telemetry"))  # not the operator's to read
    ingest = connect("ingest")
    assert ingest.accepted()
    ingest.subscribe("$share/ingest/agrimatch/v1/+/+/+/telemetry")
    device = connect(DEVICE_C)
    assert device.accepted()
    device.publish(topic(DEVICE_C, "telemetry", "garlic-coop-2", "east"), b"reading")
    assert ingest.received_until(b"reading")
    ingest.publish("agrimatch/v1/_dead/not_senml", b"dead")
    device.publish(topic(DEVICE_C, "telemetry", "garlic-coop-2", "east"), b"telemetry-2")
    device.publish(topic(DEVICE_C, "status", "garlic-coop-2", "east"), b"online")
    got = operator.received_until(b"online")
    assert [payload for _, payload in got] == [b"dead", b"online"]


def test_the_publisher_writes_config_and_a_device_cannot(connect) -> None:
    device = connect(DEVICE_A)
    assert device.accepted()
    device.subscribe(topic(DEVICE_A, "config"))
    other = connect(DEVICE_B)
    assert other.accepted()
    other.publish(topic(DEVICE_A, "config"), b"forged")
    device.publish(topic(DEVICE_A, "config"), b"self-set")
    publisher = connect("publisher")
    assert publisher.accepted()
    publisher.publish(topic(DEVICE_A, "config"), b"from-api", retain=True)
    assert [payload for _, payload in device.received_until(b"from-api")] == [b"from-api"]


def test_provisioning_writes_secrets_0600_issues_missing_passwords_once_and_audits(
    registry: sessionmaker[Session], tmp_path: Path
) -> None:
    out = tmp_path / "broker"
    with registry.begin() as session:
        first = write_broker_files(session, out, actor="cli:test")
    assert first.devices == 3
    for path in [first.password_file, first.acl_file, *first.new_password_files]:
        assert path.stat().st_mode & 0o777 == 0o600
    with registry.begin() as session:
        second = write_broker_files(session, out, actor="cli:test")
    assert second.new_password_files == []  # nothing new: services' and devices' kept
    assert password_of(second, DEVICE_A) == password_of(first, DEVICE_A)
    lines = dict(line.split(":", 1) for line in out.joinpath("passwd").read_text().split())
    assert password_matches(password_of(first, DEVICE_A), lines[DEVICE_A])
    assert password_matches(password_of(first, "ingest"), lines["ingest"])
    with registry() as session:
        audited = [(e.action, e.target) for e in entries(session, limit=10)]
    assert sorted(audited) == sorted(
        ("device.provision", d) for d in (DEVICE_A, DEVICE_B, DEVICE_C)
    )
