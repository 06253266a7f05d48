"""Three ``agrimatch ingest`` processes on one shared subscription split a fleet's load.

Real Mosquitto (its own, so no session of another test takes a share) and
InfluxDB; each process runs as docker-compose.yml runs a replica (its own
client id, its metrics port), and the counts come from those ports, as
Prometheus would read them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from agrimatch.mqtt import MqttEndpoint
from tests.loadgen import Publisher, assert_stored_exactly_once, make_messages, wait_until
from tests.services import LOCALHOST, MosquittoServer, free_port

pytestmark = pytest.mark.services

REPLICAS = 3


@pytest.fixture
def broker(tmp_path) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


def counter(metrics_url: str, name: str) -> float:
    text = httpx.get(metrics_url, timeout=5).text
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match[1]) if match else 0.0


def test_three_ingest_processes_split_the_fleet_with_nothing_lost_and_nothing_twice(
    broker, influx_server, influx_store, tmp_path
):
    processes: list[subprocess.Popen[bytes]] = []
    metrics: list[str] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    try:
        for n in range(1, REPLICAS + 1):
            port = free_port()
            log = (tmp_path / f"ingest-{n}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "agrimatch", "ingest"],
                    env=env
                    | {
                        "AGRIMATCH_MQTT_URL": broker.url,
                        "AGRIMATCH_MQTT_CLIENT_ID": f"agrimatch-ingest-{n}",
                        "AGRIMATCH_INFLUX_URL": influx_server.url,
                        "AGRIMATCH_INFLUX_DB": influx_store.database,
                        "AGRIMATCH_INGEST_METRICS_PORT": str(port),
                        "AGRIMATCH_INGEST_METRICS_HOST": LOCALHOST,
                        "AGRIMATCH_INGEST_LINGER_MS": "50",
                        "AGRIMATCH_INGEST_BATCH_SIZE": "200",
                        # N replicas split the load on the shared subscription, as the
                        # compose file's replicas do (the default is one, plain).
                        "AGRIMATCH_INGEST_SUBSCRIPTION": "shared",
                        "AGRIMATCH_INGEST_CHECK_PLACE": "false",  # made-up ids, no registry
                    },
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            metrics.append(f"http://{LOCALHOST}:{port}/metrics")

        def all_connected() -> bool:
            try:
                return all(counter(url, "agrimatch_ingest_connected") == 1 for url in metrics)
            except httpx.HTTPError:
                return False

        assert wait_until(all_connected, 120, 0.5), [
            (tmp_path / f"ingest-{n}.log").read_text()[-2000:] for n in range(1, REPLICAS + 1)
        ]
        # Connected comes with the SUBSCRIBE sent; a moment for the broker to add the
        # last one to the group, so the share is split three ways from the first message.
        time.sleep(1.0)
        messages = make_messages(60, 50, time.time() - 5 * 3600)  # 60 devices, 3,000 packs
        publisher = Publisher(MqttEndpoint.from_url(broker.url))
        publisher.publish_all(messages, pause_every=500, pause_s=0.05)
        publisher.close()

        def acked() -> list[float]:
            return [counter(url, "agrimatch_ingest_messages_acked_total") for url in metrics]

        assert wait_until(lambda: sum(acked()) >= len(messages), 120, 0.5), acked()
        time.sleep(1.0)  # anything delivered twice would show up by now
        shares = acked()
        received = [counter(url, "agrimatch_ingest_messages_received_total") for url in metrics]
        # Every message went to exactly one process and was acknowledged by it.
        print(f"shares of {len(messages)} messages: {shares}")
        assert sum(shares) == sum(received) == len(messages), (shares, received)
        # Mosquitto's shared subscription sends to the group's members in turn: each
        # process takes about a third.
        for share in shares:
            assert share >= len(messages) / REPLICAS * 0.5, shares
        assert_stored_exactly_once(influx_store, messages)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
