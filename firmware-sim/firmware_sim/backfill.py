"""Backfill: a scenario's past seasons — telemetry, demand and their truth.

For each season and field the world model gives the truth (yield, harvest
window, quantity), recorded in the registry; the field's devices sample the
same world from planting to the end of harvest at ``interval_s`` — straight
into the store (fast) or as SenML packs through MQTT (slow, end to end).
Platform demand for the seasons' years goes to the store's ``demand``
measurement and the campaign history, with outcomes, to the registry.

Devices never see the truth: telemetry comes from the same probe a live
device uses.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from paho.mqtt.client import MQTTMessageInfo
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.contract.telemetry import Reading, encode_telemetry
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from agrimatch.registry import repository
from agrimatch.scenario import Scenario
from agrimatch.store import Point, TelemetryStore
from agrimatch.store.measurements import readings_to_points
from firmware_sim.device import DeviceModel, DeviceRealism
from firmware_sim.layout import DeviceSpec, plan_from_scenario
from firmware_sim.market import daily_demand, demand_points, evaluate_campaigns, write_demand
from firmware_sim.signals import sample
from firmware_sim.world.season import SeasonTruth, simulate_field_season

Progress = Callable[[str, int, int], None]  # stage, done, total
# Who the registry says reported a simulated harvest (an agronomist's name for imported ones).
SIMULATOR_REPORTER = "simulator"


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    seasons: int | None = None  # None: the scenario's own number of seasons
    interval_s: float = 3600.0  # history at hourly samples; live devices sample every minute
    realism: bool = True  # device faults, drift and low-battery sleep in the history
    batch_points: int = 5000


@dataclass(slots=True)
class BackfillReport:
    years: list[int] = field(default_factory=list)
    field_seasons: int = 0
    devices: int = 0
    telemetry_points: int = 0
    readings: int = 0
    demand_points: int = 0
    campaigns: int = 0
    seconds: float = 0.0

    @property
    def readings_per_minute(self) -> float:
        return self.readings / self.seconds * 60 if self.seconds else 0.0


class TelemetrySink(Protocol):
    """Where backfilled telemetry goes: one device's readings of one sample at a time."""

    def add(self, address: DeviceAddress, readings: list[Reading]) -> None: ...

    def flush(self) -> None: ...


class StoreSink:
    """Straight into the store in batches; a point the store refuses is an error."""

    def __init__(self, store: TelemetryStore, batch_points: int = 5000) -> None:
        self._store = store
        self._batch_points = batch_points
        self._pending: list[Point] = []

    def add(self, address: DeviceAddress, readings: list[Reading]) -> None:
        self._pending.extend(readings_to_points(address, readings))
        if len(self._pending) >= self._batch_points:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        result = self._store.write(self._pending)
        if result.rejected:
            first = result.rejected[0]
            raise RuntimeError(f"the store refused {len(result.rejected)} points: {first.reason}")
        self._pending = []


class MqttSink:
    """As SenML packs on each device's telemetry topic, QoS 1, waiting for every PUBACK.

    Ingest rejects samples older than ``AGRIMATCH_INGEST_MAX_AGE_DAYS``: raise
    it past the backfilled seasons when sending history this way.
    """

    def __init__(self, endpoint: MqttEndpoint, window: int = 1000) -> None:
        self._client = make_paho_client(endpoint, f"agrimatch-backfill-{uuid.uuid4().hex[:8]}")
        self._client.connect(endpoint.host, endpoint.port)
        self._client.loop_start()
        self._window = window
        self._infos: list[MQTTMessageInfo] = []

    def add(self, address: DeviceAddress, readings: list[Reading]) -> None:
        payload = encode_telemetry(address.device, readings)
        self._infos.append(self._client.publish(address.telemetry_topic, payload, qos=1))
        if len(self._infos) >= self._window:
            self.flush()

    def flush(self) -> None:
        for info in self._infos:
            info.wait_for_publish(60)
            if not info.is_published():
                raise RuntimeError("the broker did not acknowledge a backfilled pack")
        self._infos = []

    def close(self) -> None:
        self.flush()
        self._client.disconnect()
        self._client.loop_stop()


def season_years(scenario: Scenario, seasons: int | None) -> list[int]:
    """The years of the seasons to backfill: the scenario's first ``seasons``."""
    count = scenario.seasons if seasons is None else seasons
    if count < 1:
        raise ValueError("seasons must be at least 1")
    scenario.check_weather_files(count)  # before any simulation: ScenarioError if not
    return list(range(scenario.first_season, scenario.first_season + count))


def sample_times(start: date, end: date, interval_s: float, phase_s: float) -> Iterator[float]:
    """Epoch seconds ``k * interval_s + phase_s`` from ``start`` 00:00 to ``end`` 24:00 UTC."""
    first = datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()
    last = datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp() + 86400
    k = -(-(first - phase_s) // interval_s)  # ceiling division
    t = k * interval_s + phase_s
    while t < last:
        yield t
        t += interval_s


def backfill(
    scenario: Scenario,
    store: TelemetryStore,
    sessions: sessionmaker[Session],
    sink: TelemetrySink,
    options: BackfillOptions | None = None,
    progress: Progress | None = None,
) -> BackfillReport:
    """Write the scenario's past seasons; returns what was written and how fast."""
    options = options or BackfillOptions()
    report = BackfillReport(years=season_years(scenario, options.seasons))
    started = time.perf_counter()
    tell = progress or (lambda stage, done, total: None)

    with sessions.begin() as session:
        repository.upsert_scenario(session, scenario)

    regions = {r.id: r for r in scenario.regions}
    farms = scenario.all_farms()
    specs_by_field: dict[tuple[str, str], list[DeviceSpec]] = {}
    for spec in plan_from_scenario(scenario, interval_s=options.interval_s):
        specs_by_field.setdefault((spec.address.farm, spec.address.field), []).append(spec)
    report.devices = sum(len(v) for v in specs_by_field.values())

    def environment(spec: DeviceSpec, t_s: float) -> list[Reading]:
        return sample(spec, scenario.seed, t_s)

    # One device model for the run: each device's observations come in time order
    # (seasons follow each other), which its battery and clock state need.
    probe: Callable[[DeviceSpec, float], list[Reading]] = (
        DeviceModel(environment, scenario.seed, DeviceRealism()) if options.realism else environment
    )

    total = len(report.years) * sum(len(f.fields) for f in farms)
    for year in report.years:
        truths: list[SeasonTruth] = []
        for farm in farms:
            anomalies = [a for a in scenario.anomalies if a.region == farm.region]
            for plan in farm.fields:
                truth = simulate_field_season(
                    farm, plan, regions[farm.region], year, scenario.seed, anomalies
                )
                truths.append(truth)
                for spec in specs_by_field.get((farm.id, plan.id), []):
                    for t in sample_times(
                        truth.planted_on, truth.harvest_end, spec.interval_s, spec.phase_s
                    ):
                        readings = probe(spec, t)
                        if readings:
                            sink.add(spec.address, readings)
                            report.telemetry_points += 1
                            report.readings += len(readings)
                report.field_seasons += 1
                tell("seasons", report.field_seasons, total)
        sink.flush()
        with sessions.begin() as session:
            for truth in truths:
                repository.record_season_truth(
                    session,
                    truth.farm,
                    truth.field,
                    year,
                    _registry_truth(truth),
                    reported_by=SIMULATOR_REPORTER,
                )

    report.demand_points = _backfill_demand(scenario, report.years, store, options, tell)
    report.campaigns = _record_campaigns(scenario, report.years, sessions)
    report.seconds = time.perf_counter() - started
    return report


def _registry_truth(truth: SeasonTruth) -> repository.SeasonTruth:
    return repository.SeasonTruth(
        yield_t_ha=truth.yield_t_ha,
        quantity_t=truth.quantity_t,
        harvest_start=truth.harvest_start,
        harvest_peak=truth.harvest_peak,
        harvest_end=truth.harvest_end,
        water_stress=min(1.0, max(0.0, truth.water_stress)),
        heat_stress=min(1.0, max(0.0, truth.heat_stress)),
    )


def _demand_window(years: list[int]) -> tuple[date, date]:
    # Seasons sown before winter start the autumn before their year; demand covers it.
    return date(max(2008, years[0] - 1), 7, 1), date(years[-1], 12, 31)


def _backfill_demand(
    scenario: Scenario,
    years: list[int],
    store: TelemetryStore,
    options: BackfillOptions,
    tell: Progress,
) -> int:
    start, end = _demand_window(years)
    written = 0
    for done, profile in enumerate(scenario.demand, start=1):
        campaigns = [
            c
            for c in scenario.campaigns
            if (c.platform, c.crop, c.region) == (profile.platform, profile.crop, profile.region)
        ]
        series = daily_demand(
            profile, start, end, seed=scenario.seed, campaigns=campaigns, trend_origin=start
        )
        written += write_demand(store, demand_points(series), batch=options.batch_points)
        tell("demand", done, len(scenario.demand))
    return written


def _record_campaigns(scenario: Scenario, years: list[int], sessions: sessionmaker[Session]) -> int:
    start, end = _demand_window(years)
    history = [c for c in scenario.campaigns if start <= c.start and c.end <= end]
    if not history:
        return 0
    outcomes = evaluate_campaigns(history, scenario.demand, seed=scenario.seed, trend_origin=start)
    with sessions.begin() as session:
        rows = repository.record_campaigns(session, history)
        for row, outcome in zip(rows, outcomes, strict=True):
            repository.record_campaign_outcome(
                session,
                row.id,
                volume_kg=outcome.volume_kg,
                absorbed_kg=max(0.0, outcome.volume_kg - outcome.baseline_kg),
            )
    return len(history)


__all__ = [
    "SIMULATOR_REPORTER",
    "BackfillOptions",
    "BackfillReport",
    "MqttSink",
    "StoreSink",
    "TelemetrySink",
    "backfill",
    "sample_times",
    "season_years",
]
