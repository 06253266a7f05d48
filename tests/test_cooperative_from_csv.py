"""A real cooperative's way in: its own CSVs and its devices' telemetry, then the answer.

Nothing here comes from the simulator. The test writes the CSV files a
cooperative in Lankao would keep (three farms, garlic and the maize after it,
three harvested seasons, a platform's sales), imports them with the commands
the README gives into an empty data dir, lets the field devices push three
years of SenML through the ingest pipeline, and then asks for forecasts and
recommendations through the service functions and `forecast show`.
"""

from __future__ import annotations

import json
import math
import threading
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from agrimatch.cli import app
from agrimatch.cli.wiring import open_forecast_service
from agrimatch.clock import SimulatedClock
from agrimatch.contract.telemetry import TimeLimits
from agrimatch.settings import Settings
from agrimatch.store.factory import open_store
from ingest.deadletter import MemoryDeadLetterSink
from ingest.pipeline import InboundMessage, TelemetryPipeline

AS_OF = date(2026, 4, 15)
FARMS = ("lk-01", "lk-02", "lk-03")
SEASONS = (2023, 2024, 2025)  # harvested; 2026's garlic is in the ground on AS_OF
GARLIC_HA = {"lk-01": 2.0, "lk-02": 3.5, "lk-03": 2.5}
MAIZE_HA = {"lk-01": 1.5, "lk-02": 2.0, "lk-03": 1.0}


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _cooperative_csvs(folder: Path) -> dict[str, Path]:
    farms = _write(
        folder / "farms.csv",
        "farm,region,lat,lon,region_name,elevation_m",
        [
            'lk-01,lankao,34.82,114.82,"Lankao, Henan",72',
            "lk-02,lankao,34.85,114.79,,",
            "lk-03,lankao,34.80,114.86,,",
        ],
    )
    fields, harvests = [], []
    yields = np.random.default_rng(7)
    for season in (*SEASONS, 2026):
        for farm in FARMS:
            fields.append(
                f"{farm},north,garlic,{GARLIC_HA[farm]},{season - 1}-10-02,loam,34.82,114.82"
            )
            fields.append(
                f"{farm},south,maize,{MAIZE_HA[farm]},{season}-06-12,sandy_loam,34.81,114.83"
            )
            if season in SEASONS:
                garlic = 17.0 + yields.normal(0, 1.2)
                maize = 7.8 + yields.normal(0, 0.6)
                harvests.append(
                    f"{farm},north,{season},{season}-05-22,{season}-06-04,{garlic:.2f},Wang Fang"
                )
                harvests.append(
                    f"{farm},south,{season},{season}-09-28,{season}-10-08,{maize:.2f},Wang Fang"
                )
    header = "farm,field,crop,area_ha,planted_on,soil,lat,lon"
    demand = []
    for day in _days(date(2022, 10, 1), AS_OF):
        # About 150 kg a day, more before Spring Festival and in the 618 campaign week;
        # 24 t of garlic a hectare-year against ~55 t a year sold: a glut to clear.
        season = 1.0 + 0.4 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 20) / 365)
        campaign = "618" if day.month == 6 and 12 <= day.day <= 18 else ""
        kg = 150 * season * (2.5 if campaign else 1.0)
        demand.append(f"coop-shop,garlic,lankao,{day},{kg:.1f},{round(kg / 2.5)},6.2,{campaign}")
    return {
        "farms": farms,
        "fields": _write(folder / "fields.csv", header, fields),
        "harvests": _write(
            folder / "harvests.csv",
            "farm,field,season,harvest_start,harvest_end,yield_t_ha,reported_by",
            harvests,
        ),
        "demand": _write(
            folder / "demand.csv",
            "platform,crop,region,day,quantity_kg,orders,price_cny_per_kg,campaign",
            demand,
        ),
    }


def _days(first: date, end: date) -> list[date]:
    return [first + timedelta(days=k) for k in range((end - first).days)]


def _packs(farm: str, field: str, device: str, first: date, end: date) -> list[bytes]:
    """Every six hours, one SenML pack of a weather-and-soil node: a Henan climate
    (cold dry winters, hot wet summers) with weather noise, deterministic."""
    rng = np.random.default_rng(zlib.crc32(f"{farm}/{field}".encode()))
    packs = []
    for day in _days(first, end):
        doy = day.timetuple().tm_yday
        mean = 14.5 - 13.5 * math.cos(2 * math.pi * (doy - 15) / 365) + rng.normal(0, 2)
        wet = rng.random() < 0.15 + 0.25 * max(0.0, math.sin(2 * math.pi * (doy - 100) / 365))
        for hour in (0, 6, 12, 18):
            t = datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp()
            swing = 5.0 * math.sin(2 * math.pi * (hour - 3) / 24)
            records = [
                {"bn": f"urn:dev:agrimatch:{device}:", "bt": t, "n": "air_temp", "u": "Cel",
                 "v": round(mean + swing, 2)},
                {"n": "air_temp_min", "u": "Cel", "v": round(mean + swing - 2.5, 2)},
                {"n": "air_temp_max", "u": "Cel", "v": round(mean + swing + 2.5, 2)},
                {"n": "air_rh", "u": "%RH", "v": round(80 if wet else 55 + rng.normal(0, 5), 1)},
                {"n": "rain", "u": "mm", "v": round(rng.gamma(1.2, 3.0), 1) if wet else 0.0},
                {"n": "soil_moisture_10cm", "u": "%", "v": 30.0 if wet else 22.0},
                {"n": "soil_moisture_30cm", "u": "%", "v": 27.0},
                {"n": "soil_temp", "u": "Cel", "v": round(mean, 2)},
                {"n": "solar_rad", "u": "W/m2",
                 "v": round(max(0.0, 600 * math.sin(2 * math.pi * (hour - 6) / 24)), 1)},
            ]  # fmt: skip
            packs.append(json.dumps(records).encode())
    return packs


def _devices_push_telemetry(settings: Settings) -> int:
    """The cooperative's nodes publish; the ingest pipeline stores what they sent."""
    store = open_store(settings)
    clock = SimulatedClock(datetime(2026, 4, 14, 23, tzinfo=UTC).timestamp())
    pipeline = TelemetryPipeline(
        store, MemoryDeadLetterSink(), clock, limits=TimeLimits(max_age_s=5 * 365 * 86400.0)
    )
    stored = 0
    try:
        for farm in FARMS:
            for field in ("north", "south"):
                device = f"{farm}-{field}-node"
                topic = f"agrimatch/v1/{farm}/{field}/{device}/telemetry"
                packs = _packs(farm, field, device, date(2022, 9, 1), AS_OF)
                for start in range(0, len(packs), 2000):
                    batch = [
                        InboundMessage(topic, p, clock.now()) for p in packs[start : start + 2000]
                    ]
                    report = pipeline.process(batch, threading.Event())
                    assert report.acked
                    assert all(o.accepted and not o.problems for o in report.outcomes)
                    stored += sum(o.readings_stored for o in report.outcomes)
    finally:
        store.close()
    return stored


@pytest.fixture(scope="module")
def cooperative(tmp_path_factory):
    root = tmp_path_factory.mktemp("cooperative")
    data_dir = root / "data"
    csvs = _cooperative_csvs(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGRIMATCH_DATA_DIR", str(data_dir))
        for variable in ("AGRIMATCH_INFLUX_URL", "AGRIMATCH_DATABASE_URL", "AGRIMATCH_MQTT_URL"):
            patch.delenv(variable, raising=False)
        runner = CliRunner()
        for kind in ("farms", "fields", "harvests", "demand"):
            done = runner.invoke(app, ["import", kind, str(csvs[kind])])
            assert done.exit_code == 0, f"import {kind}: {done.output}"
        settings = Settings(data_dir=data_dir)
        readings = _devices_push_telemetry(settings)
        with threadpool_limits(1):
            ran = runner.invoke(app, ["forecast", "run", "--as-of", str(AS_OF)])
        assert ran.exit_code == 0, ran.output
        shown = runner.invoke(app, ["forecast", "show", "--json"])
        assert shown.exit_code == 0, shown.output
        yield {"settings": settings, "readings": readings, "run": ran, "show": shown}


def test_an_empty_data_dir_takes_the_cooperatives_csvs_and_telemetry(cooperative):
    assert cooperative["readings"] > 6 * 4 * 1000 * 8  # six nodes, four packs a day, 3+ years


def test_the_forecast_covers_the_garlic_in_the_ground_and_the_maize_planned(cooperative):
    service = open_forecast_service(cooperative["settings"])
    try:
        results = service.results(AS_OF)
    finally:
        service.store.close()
    assert results is not None
    by_crop = {(f.farm, f.crop): f for f in results.fields}
    assert {crop for _, crop in by_crop} == {"garlic", "maize"}
    for farm in FARMS:
        garlic = by_crop[(farm, "garlic")]
        assert garlic.year == 2026 and garlic.region == "lankao"
        assert garlic.yield_t_ha_p10 <= garlic.yield_t_ha_p50 <= garlic.yield_t_ha_p90
        assert 10 < garlic.yield_t_ha_p50 < 25  # about the 15-19 t/ha the farms reported
        assert garlic.harvest_p50 is not None and AS_OF < garlic.harvest_p50 < date(2026, 7, 1)
        assert garlic.drivers  # read from the telemetry the nodes pushed
        maize = by_crop[(farm, "maize")]
        assert maize.harvest_p50 is not None and maize.harvest_p50 > date(2026, 8, 1)


def test_the_glut_gets_campaigns_on_the_cooperatives_platform_and_a_planting_plan(cooperative):
    body = json.loads(cooperative["show"].stdout)
    assert body["as_of"] == str(AS_OF)
    campaigns = body["campaigns"]
    assert campaigns and {c["platform"] for c in campaigns} == {"coop-shop"}
    assert all(c["crop"] == "garlic" and c["value_saved_cny"] > 0 for c in campaigns)
    assert [c["start"] for c in campaigns] == sorted(c["start"] for c in campaigns)
    planting = {(p["crop"], p["region"]): p for p in body["planting"]}
    assert ("garlic", "lankao") in planting
    garlic = planting[("garlic", "lankao")]
    assert garlic["current_ha"] == pytest.approx(sum(GARLIC_HA.values()), abs=0.01)
    assert garlic["change_ha"] < 0  # a glut every year: less garlic next season
    assert all(f["reasons"] for f in garlic["farms"])


def test_forecast_run_prints_the_answer_for_the_cooperative(cooperative):
    out = cooperative["run"].stdout
    assert "campaigns to organise, by date" in out and "coop-shop" in out
    assert "farms that change" in out and "lk-0" in out
