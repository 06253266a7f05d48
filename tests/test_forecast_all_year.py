"""The daily forecast all year: in December the garlic is in the ground and next season is planned.

The README's setup backfills the default scenario's three seasons (2024-2026); on
a December day the registry records no season in progress, but every field has a
standing plan (its crop and planting date). The forecast takes the garlic sown by
its plan in October and the maize and tomato planned for next year from those
plans, so balance, campaigns and planting come out in December too.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from agrimatch.cli import app
from agrimatch.registry.models import FieldForecast, JobRun
from forecasting.chain_data import (
    BASIS_PLANNED,
    BASIS_SOWN_PER_PLAN,
    plans_frame,
    seasons_frame,
    seasons_to_forecast,
)
from forecasting.jobs import FORECAST, record_run
from forecasting.service import ForecastService

DECEMBER = date(2026, 12, 7)


@pytest.fixture(scope="module")
def world(backfilled_world):
    return backfilled_world("default", seasons=3)


def test_in_december_the_fields_plans_give_the_garlic_sown_and_next_seasons_crops(world):
    from agrimatch.registry.repository import find_fields, list_seasons

    _store, sessions, _ = world
    with sessions() as session:
        seasons = seasons_frame(list_seasons(session))
        plans = plans_frame(find_fields(session))
    fields = seasons_to_forecast(seasons, plans, DECEMBER)
    assert len(fields) == len(plans)  # one season per field: the whole rotation
    assert set(fields["year"]) == {2027}
    garlic = fields[fields["crop"] == "garlic"]
    assert (garlic["basis"] == BASIS_SOWN_PER_PLAN).all()
    assert all(d.year == 2026 and d.month in (9, 10) for d in garlic["planted_on"])
    later = fields[fields["crop"] != "garlic"]
    assert set(later["crop"]) == {"maize", "tomato"}
    assert (later["basis"] == BASIS_PLANNED).all()
    assert all(d > DECEMBER for d in later["planted_on"])
    # Within the recorded seasons the registry's own rows are forecast, as before.
    april = seasons_to_forecast(seasons, plans, date(2026, 4, 15))
    assert set(april["year"]) == {2026} and set(april["basis"]) == {"registry"}


def test_forecast_run_in_december_forecasts_the_garlic_and_the_planned_fields(world, monkeypatch):
    _store, sessions, root = world
    monkeypatch.setenv("AGRIMATCH_DATA_DIR", str(root))
    with threadpool_limits(1):
        ran = CliRunner().invoke(app, ["forecast", "run", "--as-of", DECEMBER.isoformat()])
    assert ran.exit_code == 0, ran.output
    assert f"forecast as of {DECEMBER}" in ran.stdout and "garlic" in ran.stdout
    with sessions() as session:
        run = (
            session.query(JobRun)
            .filter_by(job=FORECAST, as_of=DECEMBER)
            .order_by(JobRun.id.desc())
            .first()
        )
        assert run is not None and run.status == "ok", run and run.error
        metrics = json.loads(run.metrics_json or "{}")
        stored = session.query(FieldForecast).filter_by(run_id=run.id).all()
    by_crop = {f.crop: f for f in stored}
    assert set(by_crop) == {"garlic", "maize", "tomato"} and {f.year for f in stored} == {2027}
    garlic = by_crop["garlic"]
    assert garlic.harvest_p50 is not None and garlic.harvest_p50.year == 2027
    assert garlic.harvest_p50.month in (5, 6)  # Zhongmou garlic comes in late May / June
    assert all(f.yield_t_ha_p10 <= f.yield_t_ha_p50 <= f.yield_t_ha_p90 for f in stored)
    assert all(f.yield_t_ha_p10 < f.yield_t_ha_p90 for f in stored)
    # Nothing of next season has telemetry yet: every yield is a prior, three fields unsown.
    assert metrics["fields_forecast"] == len(stored)
    assert metrics["fields_forecast_from_telemetry"] == 0
    assert metrics["fields_not_sown"] == 3


def test_the_scheduled_daily_forecast_runs_on_a_december_day(world):
    store, sessions, root = world
    [job] = [
        j for j in ForecastService(store, sessions, root / "models").scheduled_jobs()
        if j.name == FORECAST
    ]  # fmt: skip
    with threadpool_limits(1):
        run = record_run(sessions, FORECAST, date(2026, 12, 8), job.func)
    assert run.status == "ok", run.error
    metrics = json.loads(run.metrics_json or "{}")
    # Five garlic fields sown by their plans in October, three fields planned for 2027.
    assert metrics["fields_forecast"] == 8
    assert metrics["fields_sown_by_plan"] == 5 and metrics["fields_not_sown"] == 3
    assert "surplus_weeks" in metrics and "planting_margin_change_cny" in metrics
    with sessions() as session:
        assert session.query(FieldForecast).filter_by(run_id=run.id).count() == 8


def test_an_empty_registry_fails_fast_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("AGRIMATCH_DATA_DIR", str(tmp_path))
    ran = CliRunner().invoke(app, ["forecast", "run", "--as-of", DECEMBER.isoformat()])
    assert ran.exit_code == 1
    assert "no field-season is in progress or planned" in ran.output
    assert "agrimatch import fields" in ran.output
    assert not (tmp_path / "models").exists()  # failed before any model ran
