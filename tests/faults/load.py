"""Steady load and a real ``agrimatch ingest`` process for the fault suite.

The load is what a fleet of devices with store-and-forward does: QoS 1 packs at a
steady rate, and whatever the broker never acknowledged (it was down) is sent
again, so a loss the suite finds is ingest's or the broker's, never the
publisher's. Messages are ``tests.loadgen.make_messages`` packs: each a distinct
point with distinct values, so "stored exactly once" is checked value by value.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import httpx
import paho.mqtt.client as paho

from agrimatch.mqtt import MqttEndpoint, make_paho_client
from tests.loadgen import Sent, make_messages, wait_until
from tests.services import InfluxServer, MosquittoServer, free_port

# 100 packs/s (300 readings/s) for 20 s: about the rate of 6,000 devices at one pack a
# minute, and long enough for a fault in the middle of it to meet a batch in flight.
RATE_PER_S = 100.0
DURATION_S = 20.0
DEVICES = 40


def steady_messages(rate_per_s: float = RATE_PER_S, duration_s: float = DURATION_S) -> list[Sent]:
    """``rate × duration`` packs from ``DEVICES`` devices, sampled in the last hours."""
    per_device = max(1, round(rate_per_s * duration_s / DEVICES))
    return make_messages(DEVICES, per_device, time.time() - 6 * 3600)


@dataclass
class LoadReport:
    """What the load sent: packs, how many were sent again, and the rate it held."""

    sent: int = 0
    resent: int = 0
    elapsed_s: float = 0.0
    unacknowledged: int = 0

    @property
    def rate_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0


class SteadyLoad:
    """Publishes ``messages`` at ``rate_per_s`` in a thread; garbage may be slipped in.

    ``inject(topic, payload)`` queues a bad message to go out between good ones.
    ``join()`` waits for the end, then resends every pack the broker did not
    acknowledge (a device's store-and-forward) until all are, within a bound.
    """

    def __init__(
        self, endpoint: MqttEndpoint, messages: list[Sent], rate_per_s: float = RATE_PER_S
    ) -> None:
        self.endpoint = endpoint
        self.messages = messages
        self.rate_per_s = rate_per_s
        self.report = LoadReport()
        self._acked: set[int] = set()
        self._mid_of: dict[int, int] = {}  # mid -> index in messages
        self._lock = threading.Lock()
        self._early: set[int] = set()
        self._injected: list[tuple[str, bytes]] = []
        self.client = make_paho_client(endpoint, f"fleet-{uuid.uuid4().hex[:8]}")
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_publish = self._on_publish
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self.progress = 0  # packs handed to the client so far

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, *rest: object) -> None:
        # Runs in paho's thread while paho holds its own lock: take ours only briefly,
        # and never publish while holding ours (the two locks would deadlock).
        with self._lock:
            index = self._mid_of.pop(mid, None)
            if index is None:
                self._early.add(mid)  # acknowledged before _send noted its mid
            else:
                self._acked.add(index)

    def _send(self, index: int) -> None:
        message = self.messages[index]
        # Queued in paho also while disconnected (rc NO_CONN): sent at reconnect.
        info = self.client.publish(message.address.telemetry_topic, message.payload, qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self._acked.add(index)
            else:
                self._mid_of[info.mid] = index

    def inject(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self._injected.append((topic, payload))

    def start(self) -> SteadyLoad:
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        for index in range(len(self.messages)):
            # Paced against the start, not the last send: a stall is caught up, the
            # mean rate holds.
            due = started + index / self.rate_per_s
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._send(index)
            self.progress = index + 1
            with self._lock:
                injected, self._injected = self._injected, []
            for topic, payload in injected:
                self.client.publish(topic, payload, qos=1)
        self.report.sent = len(self.messages)
        self.report.elapsed_s = time.monotonic() - started

    def join(self, timeout_s: float = 120.0) -> LoadReport:
        """Wait for the load to end and every pack to be acknowledged by the broker."""
        self._thread.join(timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if wait_until(lambda: len(self._acked) == len(self.messages), 15, 0.2):
                break
            # Paho sends again at reconnect what it had in flight; a pack still not
            # acknowledged after that is sent anew, as a device's store-and-forward
            # would: harmless, the store keeps one point per series and time.
            with self._lock:
                missing = [i for i in range(len(self.messages)) if i not in self._acked]
            for index in missing:
                self._send(index)
            self.report.resent += len(missing)
        self.report.unacknowledged = len(self.messages) - len(self._acked)
        return self.report

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class DeadLetterWatcher:
    """Keeps every message on ``agrimatch/v1/_dead/#`` (as an operator's subscriber would)."""

    def __init__(self, endpoint: MqttEndpoint) -> None:
        self.letters: list[tuple[str, bytes]] = []
        self.client = make_paho_client(endpoint, f"dead-watch-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda c, u, m: self.letters.append((m.topic, bytes(m.payload)))
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(endpoint.host, endpoint.port)
        self.client.subscribe("agrimatch/v1/_dead/#", qos=1)
        self.client.loop_start()
        assert subscribed.wait(20), "the dead-letter subscription was not acknowledged"

    def reasons(self) -> Counter[str]:
        return Counter(topic.rsplit("/", 1)[1] for topic, _ in self.letters)

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(payload) for _, payload in self.letters]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class IngestProcess:
    """``agrimatch ingest`` as an operator runs it, with its Prometheus port, restartable."""

    def __init__(
        self, broker: MosquittoServer, influx: InfluxServer, database: str, client_id: str
    ) -> None:
        self.metrics_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")} | {
            "AGRIMATCH_MQTT_URL": broker.url,
            "AGRIMATCH_INFLUX_URL": influx.url,
            "AGRIMATCH_INFLUX_DB": database,
            "AGRIMATCH_MQTT_CLIENT_ID": client_id,
            # Batches of up to 200 packs lingering 200 ms: a SIGKILL meets one in flight.
            "AGRIMATCH_INGEST_LINGER_MS": "200",
            "AGRIMATCH_INGEST_BATCH_SIZE": "200",
            "AGRIMATCH_INGEST_RETRY_INITIAL_S": "0.1",
            "AGRIMATCH_INGEST_RETRY_MAX_S": "1",
            "AGRIMATCH_INGEST_STATS_INTERVAL_S": "5",
            "AGRIMATCH_INGEST_METRICS_PORT": str(self.metrics_port),
        }
        self.log_path = broker.root.parent / f"{client_id}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> IngestProcess:
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "agrimatch", "ingest"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        assert wait_until(lambda: self.metric("agrimatch_ingest_connected") == 1, 60, 0.2), (
            f"ingest did not connect:\n{self.log_tail()}"
        )
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def sigkill(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(15)

    def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def metrics(self) -> dict[str, float]:
        """The exposition as ``{name{labels}: value}``; empty when it does not answer."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def metric(self, name: str) -> float | None:
        return self.metrics().get(name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
