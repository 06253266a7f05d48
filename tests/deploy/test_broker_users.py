"""The stack's broker logins: what make-secrets.sh gives the services, provision lets in.

deploy/make-secrets.sh writes the services' MQTT URLs and keeps their
passwords where ``agrimatch devices provision --out deploy/broker`` reads
them; provision then writes the password file and ACL that docker-compose.yml
mounts into Mosquitto. Here both run for real (provision on a registry of its
own), a real Mosquitto loads what they wrote, and each service's URL from its
env file logs in and may do its job, and nothing more.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agrimatch.mqtt import MqttEndpoint, make_paho_client
from tests.services import LOCALHOST, MosquittoServer

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]


class _ProvisionedMosquitto(MosquittoServer):
    """Mosquitto with the password file and ACL ``agrimatch devices provision`` wrote."""

    def __init__(self, root: Path, broker_files: Path) -> None:
        self.broker_files = broker_files
        super().__init__(root)

    def _config(self) -> str:
        return (
            super()._config().replace("allow_anonymous true", "allow_anonymous false")
            + f"password_file {self.broker_files / 'passwd'}\n"
            + f"acl_file {self.broker_files / 'acl'}\n"
        )


def _url(env_file: Path, port: int) -> str:
    [line] = [x for x in env_file.read_text().splitlines() if x.startswith("AGRIMATCH_MQTT_URL=")]
    # The compose network's name for the broker, here on loopback.
    return line.split("=", 1)[1].replace("@mosquitto:1883", f"@{LOCALHOST}:{port}")


def _subscribe(url: str, topic: str) -> tuple[bool, int | None]:
    """Whether ``url`` logs in, and the broker's granted QoS for ``topic`` (None if none)."""
    endpoint = MqttEndpoint.from_url(url)
    client = make_paho_client(endpoint, f"check-{os.getpid()}-{threading.get_ident()}")
    done = threading.Event()
    result: dict[str, object] = {}

    def on_connect(c, u, flags, reason, properties):  # type: ignore[no-untyped-def]
        result["connected"] = not reason.is_failure
        if reason.is_failure:
            done.set()
        else:
            c.subscribe(topic, qos=1)

    def on_subscribe(c, u, mid, reasons, properties):  # type: ignore[no-untyped-def]
        result["granted"] = next(r.value for r in reasons)
        done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        assert done.wait(15), "the broker did not answer"
    finally:
        client.loop_stop()
        client.disconnect()
    granted = result.get("granted")
    return bool(result.get("connected")), granted if isinstance(granted, int) else None


def _received_config(publisher_url: str, reader_url: str) -> tuple[bool, bool]:
    """Publish a config as ``publisher_url``; whether it reached the publisher's own
    subscription and ``reader_url``'s."""
    topic = "agrimatch/v1/farm-1/field-1/dev-1/config"
    got = {"publisher": threading.Event(), "reader": threading.Event()}
    clients = []
    for name, url in (("publisher", publisher_url), ("reader", reader_url)):
        endpoint = MqttEndpoint.from_url(url)
        client = make_paho_client(endpoint, f"config-{name}-{os.getpid()}")
        subscribed = threading.Event()
        client.on_message = lambda c, u, m, name=name: got[name].set()
        client.on_subscribe = lambda c, u, mid, r, p, s=subscribed: s.set()
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        client.subscribe(topic, qos=1)
        assert subscribed.wait(15)
        clients.append(client)
    try:
        clients[0].publish(topic, b'{"interval_s": 60}', qos=1).wait_for_publish(15)
        reached = got["publisher"].wait(15)
        leaked = got["reader"].wait(2)
    finally:
        for client in clients:
            client.loop_stop()
            client.disconnect()
    return reached, leaked


def test_the_services_urls_from_make_secrets_log_in_with_what_provision_wrote(tmp_path):
    secrets, broker_files = tmp_path / "secrets", tmp_path / "broker"
    made = subprocess.run(
        ["bash", str(REPO / "deploy" / "make-secrets.sh"), str(secrets), str(broker_files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path / "data")
    provisioned = subprocess.run(
        [sys.executable, "-m", "agrimatch", "devices", "provision", "--out", str(broker_files)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert provisioned.returncode == 0, provisioned.stderr
    # Provision kept the passwords make-secrets made for the services: none new.
    assert "new password" not in provisioned.stdout
    assert (broker_files / "passwd").exists() and (broker_files / "acl").exists()
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd not found: apt-get install mosquitto", pytrace=False)

    server = _ProvisionedMosquitto(tmp_path / "mosquitto", broker_files)
    server.start()
    try:
        ingest = _url(secrets / "mqtt-ingest.env", server.port)
        publisher = _url(secrets / "mqtt-api.env", server.port)
        shared = "$share/ingest/agrimatch/v1/+/+/+/telemetry"
        assert _subscribe(ingest, shared) == (True, 1)  # ingest reads the shared telemetry
        config = "agrimatch/v1/+/+/+/config"
        assert _subscribe(publisher, config) == (True, 1)  # the API writes device configs
        # ... and nothing more: a config the API publishes reaches a login allowed to
        # read configs, not ingest's (Mosquitto grants any SUBSCRIBE and filters delivery).
        assert _received_config(publisher, ingest) == (True, False)
        wrong = ingest.replace("mqtt://ingest:", "mqtt://ingest:x")
        assert _subscribe(wrong, shared)[0] is False
    finally:
        server.stop()


def _provision(tmp_path: Path, *extra: str) -> tuple[Path, Path, dict[str, str]]:
    """make-secrets.sh, then provision with ``extra`` options: (secrets, broker files, env)."""
    secrets, broker_files = tmp_path / "secrets", tmp_path / "broker"
    made = subprocess.run(
        ["bash", str(REPO / "deploy" / "make-secrets.sh"), str(secrets), str(broker_files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path / "data")
    provisioned = subprocess.run(
        [
            sys.executable,
            "-m",
            "agrimatch",
            "devices",
            "provision",
            "--out",
            str(broker_files),
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert provisioned.returncode == 0, provisioned.stderr
    assert "new password" not in provisioned.stdout  # make-secrets made the simulator's too
    return secrets, broker_files, env


class _Collector:
    """A login subscribed to every agrimatch topic, counting what the ACL lets it read."""

    def __init__(self, url: str) -> None:
        self.endpoint = MqttEndpoint.from_url(url)
        name = f"collector-{self.endpoint.username}-{os.getpid()}"
        self.client = make_paho_client(self.endpoint, name)
        self.topics: dict[str, int] = {}
        self.lock = threading.Lock()
        subscribed = threading.Event()

        def on_message(c, u, message):  # type: ignore[no-untyped-def]
            with self.lock:
                self.topics[message.topic] = self.topics.get(message.topic, 0) + 1

        self.client.on_message = on_message
        self.client.on_subscribe = lambda c, u, mid, r, p: subscribed.set()
        self.client.connect(self.endpoint.host, self.endpoint.port)
        self.client.loop_start()
        self.client.subscribe("agrimatch/v1/#", qos=1)
        assert subscribed.wait(15), "the broker did not answer the subscription"

    def count(self) -> int:
        with self.lock:
            return sum(self.topics.values())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


FAST_HOUR = ("--speed", "60", "--duration", "900")  # as the README runs it: 15 s


def _publish(url: str, topics: list[str]) -> None:
    endpoint = MqttEndpoint.from_url(url)
    client = make_paho_client(endpoint, f"publisher-{os.getpid()}")
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        for topic in topics:
            client.publish(topic, b"[]", qos=1).wait_for_publish(15)
    finally:
        client.loop_stop()
        client.disconnect()


def test_the_demo_simulator_may_publish_its_scenarios_devices_telemetry_and_nothing_else(
    tmp_path,
):
    # As compose's broker-users does with DEMO_SCENARIO=default.
    secrets, broker_files, env = _provision(tmp_path, "--simulator-scenario", "default")
    acl = (broker_files / "acl").read_text()
    assert "\nuser simulator\n" in acl and "%u" not in acl
    server = _ProvisionedMosquitto(tmp_path / "mosquitto", broker_files)
    server.start()
    try:
        simulator = _url(secrets / "mqtt-sim.env", server.port)
        assert simulator.startswith("mqtt://simulator:")
        # Between them, ingest (telemetry), the publisher (configs) and the operator
        # (dead letters) read every topic the simulator could try.
        operator = (broker_files / "services" / "operator.password").read_text().strip()
        watcher = _Collector(_url(secrets / "mqtt-ingest.env", server.port))
        others = [
            _Collector(_url(secrets / "mqtt-api.env", server.port)),
            _Collector(f"mqtt://operator:{operator}@{LOCALHOST}:{server.port}"),
        ]
        try:
            own = next(
                line.split()[-1]
                for line in acl.split("user simulator", 1)[1].splitlines()
                if line.endswith("/telemetry")
            )
            farm = own.split("/")[2]
            elsewhere = [
                f"agrimatch/v1/{farm}-other/field-1/node-1/telemetry",  # another farm
                own.replace("/telemetry", "/config"),  # its devices' configs: the API's
                "agrimatch/v1/_dead/simulator",  # dead letters: ingest's
            ]
            _publish(simulator, [*elsewhere, own])
            deadline = time.monotonic() + 15
            while own not in watcher.topics and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)  # anything refused would have arrived by now with the allowed one
            assert set(watcher.topics) == {own}
            assert all(not other.topics for other in others)

            # A real `agrimatch sim` run on the scenario through that login: every message
            # it sent arrived.
            before = watcher.count()
            run_env = {**env, "AGRIMATCH_MQTT_URL": simulator}
            sim = subprocess.run(
                [sys.executable, "-m", "agrimatch", "sim", "--scenario", "default", *FAST_HOUR],
                env=run_env,
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert sim.returncode == 0, sim.stderr[-2000:]
            sent = int(re.search(r"messages (\d+)", sim.stdout).group(1))  # type: ignore[union-attr]
            assert sent > 0
            deadline = time.monotonic() + 30
            while watcher.count() - before < sent and time.monotonic() < deadline:
                time.sleep(0.2)
            assert watcher.count() - before == sent  # "messages": its telemetry packs
            devices = int(re.search(r"devices (\d+)", sim.stdout).group(1))  # type: ignore[union-attr]
            statuses = others[1].topics  # the operator's: birth and offline per device
            assert sum(statuses.values()) >= 2 * devices
            assert {topic.split("/")[2] for topic in statuses} == {
                topic.split("/")[2] for topic in watcher.topics
            }  # the same farms
            assert simulator.split("@")[0].split(":")[-1] not in sim.stdout + sim.stderr
        finally:
            for collector in (watcher, *others):
                collector.close()
    finally:
        server.stop()
