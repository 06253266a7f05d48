"""Steady load from the real fleet and a real ``agrimatch ingest`` process for the fault suite.

The load is ``firmware_sim``'s fleet, the devices ``agrimatch sim`` runs: nodes
planned by :func:`firmware_sim.plan_fleet`, each its own MQTT client sampling
its sensors on its schedule and publishing QoS 1 SenML packs through its
store-and-forward outbox (a pack leaves it only on PUBACK; what the broker did
not acknowledge is sent again after a reconnect). So a loss the suite finds is
ingest's or the broker's, never the publisher's. The fleet is registered in a
registry of its own, which ingest checks every device's place against (the
default). Only the sample interval is compressed: ``DEVICES`` nodes at
``RATE_PER_S`` packs/s in all; the sample times are six hours back, on a clock
running at real speed, so ingest takes them as recent.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.cli.fleet_wiring import register_fleet, run_fleet_until
from agrimatch.contract.telemetry import Reading
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.store import TelemetryStore
from firmware_sim import DeviceSpec, FleetStats, plan_fleet
from firmware_sim.live_clock import LiveClock
from tests.loadgen import all_points, wait_until
from tests.services import InfluxServer, MosquittoServer, free_port

# 100 packs/s for 20 s: about the rate of 6,000 devices at one pack a minute, and long
# enough for a fault in the middle of it to meet a batch in flight.
RATE_PER_S = 100.0
DURATION_S = 20.0
DEVICES = 40
SEED = 7
HOURS_BACK = 6.0


def fleet_specs(devices: int = DEVICES, rate_per_s: float = RATE_PER_S) -> list[DeviceSpec]:
    """The load's devices: ``plan_fleet`` with the interval that gives ``rate_per_s``."""
    return plan_fleet(devices, SEED, interval_s=devices / rate_per_s)


def expected_packs(specs: list[DeviceSpec], duration_s: float) -> int:
    """Packs a run of ``duration_s`` samples (each node samples its grid in the window)."""
    return sum(math.ceil(duration_s / spec.interval_s) for spec in specs)


def registry_for(root: Path, specs: list[DeviceSpec]) -> str:
    """A SQLite registry in ``root`` holding the fleet (as ``agrimatch sim`` registers it)."""
    url = f"sqlite:///{root / 'registry.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    register_fleet(sessions, specs)
    engine.dispose()
    return url


@dataclass(frozen=True, slots=True)
class Sent:
    """One pack the broker acknowledged: where from, its sample time, its values."""

    address: DeviceAddress
    time_ms: int
    values: dict[str, float]


@dataclass
class LoadReport:
    """What the load sent: packs acknowledged, how many waited in the outbox and were
    sent after a reconnect, the rate it held, packs never acknowledged."""

    sent: int = 0
    resent: int = 0
    elapsed_s: float = 0.0
    unacknowledged: int = 0
    reconnects: int = 0

    @property
    def rate_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0


class SteadyLoad:
    """The fleet of ``specs`` running ``duration_s`` in a thread; garbage may be slipped in.

    ``inject(topic, payload)`` publishes a bad message (QoS 1) from a client of its
    own, between the fleet's packs. ``join()`` waits for the fleet to end: its
    nodes flush their outboxes before they stop.
    """

    def __init__(
        self,
        endpoint: MqttEndpoint,
        specs: list[DeviceSpec],
        duration_s: float = DURATION_S,
    ) -> None:
        self.endpoint = endpoint
        self.specs = specs
        self.duration_s = duration_s
        self.expected = expected_packs(specs, duration_s)
        self.report = LoadReport()
        self.messages: list[Sent] = []  # acknowledged packs, in PUBACK order
        self._stats: FleetStats | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._clock = LiveClock(time.time() - HOURS_BACK * 3600, 1.0)
        self.injector = make_paho_client(endpoint, f"garbage-{uuid.uuid4().hex[:8]}")
        self.injector.reconnect_delay_set(1, 2)
        self.injector.connect(endpoint.host, endpoint.port)
        self.injector.loop_start()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)

    @property
    def progress(self) -> int:
        """Packs acknowledged by the broker so far."""
        return len(self.messages)

    def _acked(self, address: DeviceAddress, readings: list[Reading]) -> None:
        # In the fleet's event loop: list.append is atomic, no lock needed.
        values = {r.sensor: r.value for r in readings}
        self.messages.append(Sent(address, readings[0].time_ms, values))

    def inject(self, topic: str, payload: bytes) -> None:
        info = self.injector.publish(topic, payload, qos=1)
        info.wait_for_publish(60)

    def start(self) -> SteadyLoad:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._stats = run_fleet_until(
                self.endpoint,
                self._clock,
                self.specs,
                SEED,
                self.duration_s,
                self._stop,
                on_publish=self._acked,
            )
        except BaseException as exc:  # reported by join()
            self._error = exc

    def join(self, timeout_s: float = 120.0) -> LoadReport:
        """Wait for the fleet to end (nodes flush what they hold, within a bound)."""
        self._thread.join(self.duration_s + timeout_s)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(30)
        if self._error is not None:
            raise AssertionError(f"the fleet failed: {self._error!r}") from self._error
        stats = self._stats
        assert stats is not None, "the fleet did not end"
        self.report = LoadReport(
            sent=stats.messages_sent,
            resent=stats.replayed,
            elapsed_s=time.monotonic() - self._started,
            unacknowledged=stats.undelivered + stats.evicted,
            reconnects=stats.reconnects,
        )
        return self.report

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.injector.disconnect()
        self.injector.loop_stop()


def assert_stored_exactly_once(store: TelemetryStore, sent: list[Sent]) -> None:
    """Every acknowledged pack is in the store with its place and every value, once, and
    the store holds nothing else (one point per device and sample time)."""
    points = all_points(store)
    by_key = {(p.tags["device"], p.time_ms): p for p in points}
    assert len(by_key) == len(points), "a point is stored twice"
    missing = [m for m in sent if (m.address.device, m.time_ms) not in by_key]
    assert not missing, f"{len(missing)} of {len(sent)} packs lost, e.g. {missing[:3]}"
    for m in sent:
        point = by_key[(m.address.device, m.time_ms)]
        assert (point.tags["farm"], point.tags["field"]) == (m.address.farm, m.address.field)
        stored = {k: float(v) for k, v in point.fields.items()}
        assert stored.keys() == m.values.keys(), (m, stored)
        assert all(math.isclose(stored[k], v, rel_tol=1e-12) for k, v in m.values.items())
    assert len(points) == len({(m.address.device, m.time_ms) for m in sent})


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
        self,
        broker: MosquittoServer,
        influx: InfluxServer,
        database: str,
        client_id: str,
        *,
        registry_url: str,
        subscription: str = "plain",
    ) -> None:
        self.metrics_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")} | {
            "AGRIMATCH_MQTT_URL": broker.url,
            "AGRIMATCH_DATABASE_URL": registry_url,  # the place check reads it (default on)
            "AGRIMATCH_INGEST_SUBSCRIPTION": subscription,
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

    def said(self, phrase: str) -> bool:
        """Whether ingest's log holds ``phrase`` (the console log wraps long lines)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return False
        return phrase in " ".join(text.split())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
