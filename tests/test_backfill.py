"""Backfill: a scenario's past seasons into the store and the registry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.registry.repository import list_campaigns, list_seasons
from agrimatch.scenario import load_scenario, parse_scenario
from agrimatch.settings import Settings
from agrimatch.store import Aggregation
from firmware_sim.backfill import BackfillOptions, MqttSink, StoreSink, backfill, sample_times
from firmware_sim.layout import plan_from_scenario

SMALL = """
name = "small"
seed = 5
first_season = 2022
seasons = 2

[[regions]]
id = "zhongmou"
name = "Zhongmou"
lat = 34.72
lon = 113.98

[[farms]]
id = "farm-a"
region = "zhongmou"
lat = 34.7
lon = 113.9
fields = [
  { id = "f1", crop = "garlic", area_ha = 3.0, planting = "10-01", devices = 1 },
  { id = "f2", crop = "maize", area_ha = 5.0, planting = "06-10", devices = 2, camera = true },
]

[[platforms]]
id = "pdd"
name = "Pinduoduo"

[[demand]]
platform = "pdd"
crop = "garlic"
region = "zhongmou"
base_kg_per_day = 5000
price_cny_per_kg = 6.0

[[campaigns]]
platform = "pdd"
crop = "garlic"
region = "zhongmou"
start = "2022-06-01"
end = "2022-06-07"
uplift = 4.0
"""


def _day_ms(day) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    migrate(engine)
    return session_factory(engine)


def test_sample_times_cover_the_window_on_the_device_grid():
    from datetime import date

    times = list(sample_times(date(2024, 1, 1), date(2024, 1, 2), 3600, 120.0))
    assert len(times) == 48
    assert all((t - 120.0) % 3600 == 0 for t in times)


def test_backfill_records_truth_telemetry_demand_and_campaigns(embedded_store, sessions):
    scenario = parse_scenario(SMALL)
    report = backfill(
        scenario,
        embedded_store,
        sessions,
        StoreSink(embedded_store),
        BackfillOptions(interval_s=6 * 3600, realism=False),
    )
    assert report.years == [2022, 2023]
    assert report.field_seasons == 4 and report.devices == 4  # 1 + 2 sensors and a camera
    with sessions() as session:
        seasons = list_seasons(session, has_truth=True)
        assert len(seasons) == 4
        garlic = next(s for s in seasons if s.crop == "garlic" and s.year == 2022)
        assert garlic.yield_t_ha > 0 and garlic.harvest_start <= garlic.harvest_end
        assert garlic.planted_on.year == 2021  # garlic is sown the autumn before its season
        assert garlic.quantity_t == pytest.approx(garlic.yield_t_ha * 3.0, rel=1e-6)
        assert garlic.reported_by == "simulator" and garlic.reported_at is not None
        windows = [
            (_day_ms(s.planted_on), _day_ms(s.harvest_end) + 86_400_000)
            for s in seasons
            if s.field_id == "f1"
        ]
        [campaign] = list_campaigns(session)
        assert campaign.volume_kg > 0 and campaign.absorbed_kg > 0

    # Telemetry runs from planting to the end of harvest, for every device of the field.
    points = embedded_store.query_points("telemetry", 0, 2**42, tags={"field": "f1"})
    assert points and all(any(a <= p.time_ms < b for a, b in windows) for p in points)
    assert {p.time_ms // 86_400_000 for p in points} >= {w[0] // 86_400_000 for w in windows}
    readings = sum(len(p.fields) for p in embedded_store.query_points("telemetry", 0, 2**42))
    assert readings == report.readings
    cameras = embedded_store.query_points("telemetry", 0, 2**42, tags={"device": "farm-a-f2-cam"})
    assert cameras and all(set(p.fields) >= {"ndvi"} for p in cameras)

    [demand] = embedded_store.aggregate("demand", ["quantity_kg"], Aggregation.COUNT, 0, 2**42)
    assert demand.values["quantity_kg"] == report.demand_points > 365


def test_backfill_is_deterministic_and_idempotent(embedded_store, sessions):
    scenario = parse_scenario(SMALL)
    options = BackfillOptions(seasons=1, interval_s=12 * 3600, realism=True)
    first = backfill(scenario, embedded_store, sessions, StoreSink(embedded_store), options)
    points = embedded_store.query_points("telemetry", 0, 2**42)
    again = backfill(scenario, embedded_store, sessions, StoreSink(embedded_store), options)
    assert again.readings == first.readings
    assert embedded_store.query_points("telemetry", 0, 2**42) == points  # same points, once
    with sessions() as session:
        assert len(list_seasons(session, has_truth=True)) == 2


def test_a_drought_scenario_records_lower_yields_than_the_same_without_it(embedded_store, sessions):
    dry = SMALL.replace(
        "[[platforms]]",
        '[[anomalies]]\nkind = "drought"\nregion = "zhongmou"\nstart = "2022-03-01"\n'
        'end = "2022-05-31"\nintensity = 2.0\n\n[[platforms]]',
    )
    from firmware_sim.world.season import simulate_field_season

    def garlic_yield(text: str) -> float:
        scenario = parse_scenario(text)
        farm = scenario.all_farms()[0]
        return simulate_field_season(
            farm, farm.fields[0], scenario.regions[0], 2022, scenario.seed, scenario.anomalies
        ).yield_t_ha

    assert garlic_yield(dry) < garlic_yield(SMALL)


@pytest.mark.services
def test_backfill_into_influxdb_and_postgresql(influx_store, postgres_url):
    engine = make_engine(postgres_url)
    migrate(engine)
    sessions = session_factory(engine)
    scenario = parse_scenario(SMALL)
    report = backfill(
        scenario,
        influx_store,
        sessions,
        StoreSink(influx_store),
        BackfillOptions(seasons=1, interval_s=6 * 3600),
    )
    [row] = influx_store.aggregate("telemetry", ["air_temp", "ndvi"], Aggregation.COUNT, 0, 2**42)
    assert row.values["air_temp"] and row.values["ndvi"]
    with sessions() as session:
        assert len(list_seasons(session, has_truth=True)) == report.field_seasons == 2
    engine.dispose()


@pytest.mark.services
def test_backfill_through_mqtt_reaches_the_store_via_ingest(
    tmp_path, mosquitto_server, influx_store
):
    from agrimatch.cli.wiring import build_ingest
    from agrimatch.mqtt import MqttEndpoint
    from tests.loadgen import stored_count, wait_until

    endpoint = MqttEndpoint.from_url(mosquitto_server.url)
    # Ingest checks places in the registry the backfill registers the scenario in.
    registry_url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    settings = Settings(ingest_max_age_days=3650, ingest_linger_ms=50, database_url=registry_url)
    # A plain subscription: the session broker may hold other tests' persistent sessions
    # on the shared one, each taking its share of the messages.
    ingest = build_ingest(
        settings,
        influx_store,
        endpoint=endpoint,
        client_id="backfill-ingest",
        persistent=False,
        shared=False,
    )
    ingest.start()
    try:
        assert ingest.connected.wait(10)
        engine = make_engine(registry_url)
        migrate(engine)
        sink = MqttSink(endpoint)
        text = SMALL.replace("devices = 2, camera = true", "devices = 0")
        report = backfill(
            parse_scenario(text),
            influx_store,
            session_factory(engine),
            sink,
            BackfillOptions(seasons=1, interval_s=24 * 3600, realism=False),
        )
        sink.close()
        assert wait_until(lambda: stored_count(influx_store) >= report.telemetry_points, 30)
        assert stored_count(influx_store) == report.telemetry_points
        assert ingest.metrics.snapshot().messages_dead_lettered == 0
    finally:
        ingest.stop()


def test_backfill_command_writes_the_default_scenario(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path)
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agrimatch",
            "sim",
            "backfill",
            "--scenario",
            "default",
            "--seasons",
            "1",
            "--interval",
            "21600",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "field-seasons" in result.stdout and time.monotonic() - started < 300
    assert (tmp_path / "registry.sqlite3").exists() and (tmp_path / "telemetry.sqlite3").exists()


def test_backfill_command_rejects_an_unknown_scenario(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "agrimatch", "sim", "backfill", "--scenario", "atlantis"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "atlantis" in result.stderr


def test_every_shipped_scenario_plans_valid_devices():
    for name in ("default", "garlic-glut", "korla-pear", "yellow-river-jujube", "snow-lotus-surge"):
        specs = plan_from_scenario(load_scenario(name))
        assert len({s.device for s in specs}) == len(specs) > 0
