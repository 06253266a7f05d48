"""``agrimatch demo``: the whole telemetry path in one process.

Broker (embedded amqtt unless AGRIMATCH_MQTT_URL is set) → simulated fleet on
an accelerated clock → ingest → store (embedded SQLite unless
AGRIMATCH_INFLUX_URL is set), then a summary checked against the store itself.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from agrimatch.cli.fleet_wiring import run_fleet_until
from agrimatch.cli.wiring import build_ingest, open_registry
from agrimatch.clock import SimulatedClock, to_datetime
from agrimatch.contract.telemetry import Reading
from agrimatch.contract.topics import DeviceAddress
from agrimatch.embedded_broker import EmbeddedBroker
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from agrimatch.scenario import Scenario
from agrimatch.settings import Settings
from agrimatch.store import Aggregation, TelemetryStore
from agrimatch.store.factory import open_store
from firmware_sim import FleetStats
from firmware_sim.layout import plan_from_scenario
from ingest.mqtt_consumer import MqttIngest

INTERVAL_S = 60.0
SHOWN_SENSORS = ("air_temp", "air_rh", "soil_moisture_10cm", "solar_rad", "battery")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration_s: float
    speed: float
    scenario: Scenario
    realism: bool
    garbage: int
    sim_start: float | None = None  # the simulated clock's start (epoch s); None: now


@dataclass(slots=True)
class DemoSummary:
    broker: str
    store: str
    devices: int
    messages_sent: int
    readings_sent: int
    readings_stored: int  # of those sent, found in the store with their values
    dead_lettered: int
    garbage_sent: int
    sim_start: float
    sim_end: float
    latest: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def consistent(self) -> bool:
        return (
            self.readings_stored == self.readings_sent
            and self.dead_lettered == self.garbage_sent
            and self.readings_sent > 0
        )


class _Ledger:
    """What the fleet confirmed as published: (device, time_ms) → readings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.packs: dict[tuple[str, int], dict[str, float]] = {}
        self.messages = 0

    def add(self, address: DeviceAddress, readings: list[Reading]) -> None:
        with self._lock:
            self.messages += 1
            for r in readings:
                self.packs.setdefault((address.device, r.time_ms), {})[r.sensor] = r.value

    @property
    def readings(self) -> int:
        with self._lock:
            return sum(len(v) for v in self.packs.values())


def _garbage(address: DeviceAddress) -> list[bytes]:
    """A few messages that can never be valid, one per failure class."""
    now = time.time()
    return [
        b"\xff\xfe not json",
        json.dumps([{"bn": "urn:dev:agrimatch:x:", "n": "air_temp", "u": "Cel", "v": 1}]).encode(),
        json.dumps({"n": "air_temp", "v": 20}).encode(),
        json.dumps(
            [
                {
                    "bn": f"urn:dev:agrimatch:{address.device}:",
                    "bt": now,
                    "n": "air_temp",
                    "u": "Cel",
                    "v": 999,
                }
            ]
        ).encode(),
    ]


def _publish_garbage(endpoint: MqttEndpoint, address: DeviceAddress, count: int) -> int:
    client = make_paho_client(endpoint, f"agrimatch-demo-garbage-{uuid.uuid4().hex[:8]}")
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        samples = _garbage(address)
        infos = [
            client.publish(address.telemetry_topic, samples[i % len(samples)], qos=1)
            for i in range(count)
        ]
        for info in infos:
            info.wait_for_publish(10)
        return count
    finally:
        client.disconnect()
        client.loop_stop()


def run_demo(settings: Settings, options: DemoOptions, console: Console) -> DemoSummary:
    """Run the demo and return a summary whose stored counts come from the store."""
    start = time.time() if options.sim_start is None else options.sim_start
    clock = SimulatedClock(start=start, speed=options.speed)
    sim_start = clock.now()
    ledger = _Ledger()
    with ExitStack() as stack:
        if settings.mqtt_embedded:
            broker = stack.enter_context(EmbeddedBroker())
            endpoint, broker_name, shared = broker.endpoint, f"embedded amqtt :{broker.port}", False
        else:
            endpoint = MqttEndpoint.from_settings(settings)
            broker_name, shared = repr(endpoint), True
        store = open_store(settings)
        stack.callback(store.close)
        store_name = (
            "embedded SQLite"
            if settings.influx_embedded
            else f"InfluxDB {settings.influx_url_display}"
        )
        service = build_ingest(
            settings,
            store,
            endpoint=endpoint,
            clock=clock,
            client_id=f"agrimatch-demo-{uuid.uuid4().hex[:8]}",
            shared=shared,
            persistent=False,
        )
        service.start()
        stack.callback(service.stop)
        if not service.connected.wait(15):
            raise RuntimeError(f"ingest could not connect to {endpoint!r}")

        stop = threading.Event()
        result: dict[str, FleetStats] = {}

        specs = plan_from_scenario(options.scenario, interval_s=INTERVAL_S)
        registry = open_registry(settings)

        def fleet() -> None:
            result["stats"] = run_fleet_until(
                endpoint,
                clock,
                specs,
                options.scenario.seed,
                options.duration_s * options.speed,
                stop,
                on_publish=ledger.add,
                realism=options.realism,
                registry=registry,  # ingest's place check must know the fleet
            )

        fleet_thread = threading.Thread(target=fleet, name="fleet", daemon=True)
        fleet_thread.start()
        _show_progress(console, options, fleet_thread, ledger, service)
        garbage_sent = 0
        if options.garbage:
            # A registered device's topic: its garbage gets its own reasons, not the place
            # check's unknown_device.
            some_device = specs[0].address
            garbage_sent = _publish_garbage(endpoint, some_device, options.garbage)
        _wait_drained(service, ledger.readings, garbage_sent, timeout_s=30)
        sim_end = clock.now()
        service.stop()
        stored = _verify_stored(store, ledger, sim_start, sim_end)
        latest = _latest_per_field(store, sim_start, sim_end)
        snapshot = service.metrics.snapshot()
    stats = result.get("stats")
    return DemoSummary(
        broker=broker_name,
        store=store_name,
        devices=stats.devices if stats else len(specs),
        messages_sent=ledger.messages,
        readings_sent=ledger.readings,
        readings_stored=stored,
        dead_lettered=snapshot.dead_letters,
        garbage_sent=garbage_sent,
        sim_start=sim_start,
        sim_end=sim_end,
        latest=latest,
    )


def _show_progress(
    console: Console,
    options: DemoOptions,
    fleet_thread: threading.Thread,
    ledger: _Ledger,
    service: MqttIngest,
) -> None:
    metrics = service.metrics
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("fleet", total=options.duration_s, stats="")
        started = time.monotonic()
        while fleet_thread.is_alive():
            fleet_thread.join(0.25)
            snap = metrics.snapshot()
            progress.update(
                task,
                completed=min(options.duration_s, time.monotonic() - started),
                stats=f"sent {ledger.readings:,} readings · stored {snap.readings_stored:,}",
            )
        progress.update(task, completed=options.duration_s)


def _wait_drained(service: MqttIngest, readings: int, garbage: int, timeout_s: float) -> None:
    metrics = service.metrics
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        snap = metrics.snapshot()
        if snap.readings_stored >= readings and snap.dead_letters >= garbage:
            return
        time.sleep(0.1)


def _verify_stored(store: TelemetryStore, ledger: _Ledger, start: float, end: float) -> int:
    """Count the sent readings found in the store with the same value."""
    margin_ms = int(INTERVAL_S * 1000)
    points = store.query_points(
        "telemetry", int(start * 1000) - margin_ms, int(end * 1000) + margin_ms
    )
    by_key = {(p.tags.get("device"), p.time_ms): p.fields for p in points}
    found = 0
    for key, readings in ledger.packs.items():
        fields = by_key.get(key, {})
        found += sum(
            1
            for sensor, value in readings.items()
            if sensor in fields and abs(float(fields[sensor]) - value) <= 1e-9 * max(1, abs(value))
        )
    return found


def _latest_per_field(
    store: TelemetryStore, start: float, end: float
) -> dict[str, dict[str, float | None]]:
    rows = store.aggregate(
        "telemetry",
        list(SHOWN_SENSORS),
        Aggregation.LAST,
        int(start * 1000) - int(INTERVAL_S * 1000),
        int(end * 1000) + int(INTERVAL_S * 1000),
        group_by=("farm", "field"),
    )
    return {f"{r.group['farm']}/{r.group['field']}": dict(r.values) for r in rows}


def print_summary(summary: DemoSummary, console: Console) -> None:
    """The demo's closing report."""
    table = Table(title="agrimatch demo", show_header=False)
    table.add_row("broker", summary.broker)
    table.add_row("store", summary.store)
    table.add_row(
        "simulated time",
        f"{to_datetime(summary.sim_start):%Y-%m-%d %H:%M} → "
        f"{to_datetime(summary.sim_end):%H:%M} UTC",
    )
    table.add_row("devices", str(summary.devices))
    table.add_row("messages sent", f"{summary.messages_sent:,}")
    table.add_row("readings sent", f"{summary.readings_sent:,}")
    table.add_row("readings stored (checked in the store)", f"{summary.readings_stored:,}")
    table.add_row("malformed messages injected", str(summary.garbage_sent))
    table.add_row("dead-lettered", str(summary.dead_lettered))
    console.print(table)
    latest = Table("farm/field", *SHOWN_SENSORS, title="latest readings per field")
    for name, values in sorted(summary.latest.items()):
        latest.add_row(
            name, *("-" if values.get(s) is None else f"{values[s]:.1f}" for s in SHOWN_SENSORS)
        )
    console.print(latest)
    verdict = "[green]consistent[/]" if summary.consistent else "[red]INCONSISTENT[/]"
    console.print(f"store check: {verdict}")
