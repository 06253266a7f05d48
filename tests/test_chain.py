"""The forecast chain on a backfilled world: store + registry in, forecasts and advice out."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from agrimatch.agronomy import CROPS
from agrimatch.registry import make_engine, session_factory
from agrimatch.registry.models import FieldForecast, JobRun, Recommendation, Season
from forecasting.chain import ChainError, run_chain
from forecasting.frames import BALANCE_COLUMNS
from forecasting.jobs import FORECAST, record_run
from forecasting.model_store import list_models
from forecasting.results import save_results
from forecasting.service import ForecastService

AS_OF = date(2026, 4, 15)


@pytest.fixture(scope="module")
def world(backfilled_world):
    return backfilled_world("default", seasons=3)


def _run(world, as_of=AS_OF):
    store, sessions, root = world
    with threadpool_limits(1), sessions() as session:
        return run_chain(store, session, as_of, model_dir=root / "models")


def test_the_chain_forecasts_every_field_in_season_with_ordered_quantiles(world):
    result = _run(world)
    forecasts = result.forecasts
    assert len(forecasts) >= 5 and set(forecasts["crop"]) >= {"garlic"}
    assert (forecasts["yield_t_ha_p10"] <= forecasts["yield_t_ha_p50"]).all()
    assert (forecasts["yield_t_ha_p50"] <= forecasts["yield_t_ha_p90"]).all()
    assert (forecasts["harvest_p10"] <= forecasts["harvest_p90"]).all()
    assert (forecasts["harvest_p50"] > AS_OF).all()
    sown = forecasts["planted_on"] <= AS_OF
    assert all(json.loads(d) for d in forecasts.loc[sown, "drivers"])
    assert result.model_version.startswith("yield-")


def test_fields_planned_but_not_sown_are_forecast_from_their_crops_past(world):
    # Maize follows the garlic in June: in the registry's plan on 15 April, not in the ground.
    _store, sessions, _ = world
    forecasts = _run(world).forecasts
    later = forecasts[forecasts["planted_on"] > AS_OF]
    assert set(later["crop"]) == {"maize"}
    assert (later["harvest_p10"] > later["planted_on"] + timedelta(days=60)).all()
    assert (later["drivers"] == "[]").all()  # no telemetry yet: nothing moved the forecast
    with sessions() as session:
        past = [s.yield_t_ha for s in session.query(Season).filter(
            Season.crop == "maize", Season.year < 2026)]  # fmt: skip
    assert later["yield_t_ha_p50"].iloc[0] == pytest.approx(np.median(past))
    # Past yields' P10-P90, widened for a new season drawn from two recorded ones.
    median, widen = np.median(past), np.sqrt(1.0 + 1.0 / 2)
    low, high = np.quantile(past, [0.1, 0.9])
    assert later["yield_t_ha_p10"].iloc[0] == pytest.approx(median - (median - low) * widen)
    ceiling = max(CROPS["maize"].potential_yield_t_ha, max(past))  # what the crop has given
    expected_p90 = min(median + (high - median) * widen, ceiling)
    assert later["yield_t_ha_p90"].iloc[0] == pytest.approx(expected_p90)
    assert (later["basis"] == "not sown yet: the crop's past yields here, widened").all()


def test_the_chain_yields_are_near_the_recorded_truth(world):
    _store, sessions, _ = world
    result = _run(world)
    with sessions() as session:
        truth = {
            (s.farm_id, s.field_id): s.yield_t_ha
            for s in session.query(Season).filter(Season.year == 2026)
        }
    errors = [
        abs(row.yield_t_ha_p50 - truth[(row.farm, row.field)]) / truth[(row.farm, row.field)]
        for row in result.forecasts.itertuples()
    ]
    assert sum(errors) / len(errors) < 0.25


def test_the_chain_never_reads_a_season_harvested_after_the_date(world):
    _store, sessions, _ = world
    before = _run(world).forecasts["yield_t_ha_p50"].to_numpy()
    with sessions.begin() as session:
        for season in session.query(Season).filter(Season.year == 2026):
            season.yield_t_ha = (season.yield_t_ha or 1.0) * 3
    try:
        after = _run(world).forecasts["yield_t_ha_p50"].to_numpy()
    finally:
        with sessions.begin() as session:
            for season in session.query(Season).filter(Season.year == 2026):
                season.yield_t_ha = (season.yield_t_ha or 3.0) / 3
    assert (before == after).all()


def test_balance_and_campaigns_respect_the_planning_date(world):
    result = _run(world)
    assert list(result.balance.columns) == list(BALANCE_COLUMNS)
    assert not result.demand.empty and not result.supply.empty
    for campaign in result.campaigns:
        assert campaign.start >= AS_OF + timedelta(days=10)  # pdd's lead time in the scenario
        assert campaign.reasons and campaign.value_at_risk_cny > 0


def test_results_are_saved_with_the_model_version_and_date(world):
    _, sessions, _ = world
    result = _run(world)
    with sessions.begin() as session:
        run = JobRun(job="forecast", as_of=AS_OF, started_at=datetime.now(UTC), status="ok")
        session.add(run)
        session.flush()
        save_results(session, run.id, result)
    with sessions() as session:
        rows = session.query(FieldForecast).filter(FieldForecast.as_of == AS_OF).all()
        assert len(rows) == len(result.forecasts)
        assert {r.model_version for r in rows} == {result.model_version}
        recs = session.query(Recommendation).filter(Recommendation.as_of == AS_OF).all()
        kinds = [r.kind for r in recs]
        assert kinds.count("campaign") == len(result.campaigns)
        assert result.planting is not None
        assert kinds.count("planting") == len(result.planting.regions)
        planting = [json.loads(r.body_json) for r in recs if r.kind == "planting"]
        assert all(body["farms"] and "recommended_ha" in body for body in planting)


def test_the_chain_plans_next_seasons_areas_within_the_change_limit(world):
    result = _run(world)
    plan = result.planting
    assert plan is not None, result.planting_error
    farms = plan.farms
    land = farms.groupby("farm")["current_ha"].sum()
    moved = (farms["recommended_ha"] - farms["current_ha"]).abs()
    limit = 0.2 * farms["farm"].map(land)  # PlantingConstraints' default max change share
    assert (moved <= limit + 1e-6).all()
    kept = farms.groupby("farm")["recommended_ha"].sum()
    assert (kept <= land + 1e-6).all()
    # This season is what grows now and what its years still have to sow (maize after
    # the garlic harvest): the whole farm, not just the fields in the ground on AS_OF.
    _store, sessions, _ = world
    years = set(result.forecasts["year"])
    current: dict[tuple[str, str], float] = {}
    with sessions() as session:
        for season in session.query(Season).filter(Season.year.in_(years)):
            key = (season.field.farm.region_id, season.crop)
            current[key] = current.get(key, 0.0) + season.area_ha
    regions = plan.regions.set_index(["region", "crop"])
    assert regions["current_ha"].to_dict() == pytest.approx(current)


def test_the_forecast_loads_the_model_stored_for_the_seasons_it_knows(world, tmp_path):
    store, sessions, _ = world
    models = tmp_path / "models"
    with threadpool_limits(1), sessions() as session:
        first = run_chain(store, session, AS_OF, model_dir=models)
        # 2025-12-01: the 2025 garlic and maize are in, as on AS_OF: the same seasons are
        # known. 2025-08-01 is after the 2025 garlic harvest and before the maize's: fewer.
        again = run_chain(store, session, date(2025, 12, 1), model_dir=models)
        earlier = run_chain(store, session, date(2025, 8, 1), model_dir=models)
    stored = list_models(models, "yield")
    assert again.model_version == first.model_version  # loaded, not refitted
    assert earlier.model_version != first.model_version
    assert len(stored) == 2
    assert all(m.training_key for m in stored)
    assert len({m.training_key for m in stored}) == 2
    rows = {m.version: m.metrics["training_rows"] for m in stored}
    assert rows[earlier.model_version] < rows[first.model_version]  # it never saw the maize


def test_a_scheduled_forecast_is_one_recorded_run_that_owns_its_results_a_rerun_replaces(world):
    store, sessions, root = world
    jobs = ForecastService(store, sessions, root / "models").scheduled_jobs()
    [job] = [j for j in jobs if j.name == FORECAST]
    with sessions() as session:
        runs_before = session.query(JobRun).count()

    with threadpool_limits(1):
        run = record_run(sessions, FORECAST, AS_OF, job.func)

    assert run.status == "ok", run.error
    assert run.model_version and run.model_version.startswith("yield-")
    with sessions() as session:
        assert session.query(JobRun).count() == runs_before + 1
        forecasts = session.query(FieldForecast).filter_by(run_id=run.id).count()
        advice = session.query(Recommendation).filter_by(run_id=run.id).count()
        assert forecasts >= 5 and advice >= 1

    # Run again for the same date (a manual run after the scheduled one): it replaces.
    with threadpool_limits(1):
        again = record_run(sessions, FORECAST, AS_OF, job.func)

    assert again.status == "ok", again.error
    with sessions() as session:
        key = {"as_of": AS_OF, "model_version": again.model_version}
        same_key = session.query(FieldForecast).filter_by(**key).all()
        assert len(same_key) == forecasts and {f.run_id for f in same_key} == {again.id}
        assert session.query(Recommendation).filter_by(**key).count() == advice


@pytest.mark.services
def test_the_chain_on_influxdb_and_postgresql_forecasts_as_on_the_embedded_defaults(
    world, influx_store, postgres_url, tmp_path
):
    # The same world backfilled into the real services: forecasting reads only through the
    # store port and the registry, so both pairs of adapters must give the same forecast.
    from agrimatch.registry import migrate
    from agrimatch.scenario import load_scenario
    from firmware_sim.backfill import BackfillOptions, StoreSink, backfill

    engine = make_engine(postgres_url)
    migrate(engine)
    sessions = session_factory(engine)
    options = BackfillOptions(seasons=3, interval_s=6 * 3600, realism=False)
    backfill(load_scenario("default"), influx_store, sessions, StoreSink(influx_store), options)
    try:
        with threadpool_limits(1), sessions() as session:
            served = run_chain(influx_store, session, AS_OF, model_dir=tmp_path / "models")
    finally:
        engine.dispose()
    embedded = _run(world)

    keys = ["farm", "field", "crop"]
    assert len(served.forecasts) >= 5 and served.campaigns
    assert served.forecasts[keys].equals(embedded.forecasts[keys])
    for column in ("yield_t_ha_p10", "yield_t_ha_p50", "yield_t_ha_p90"):
        assert np.allclose(served.forecasts[column], embedded.forecasts[column], rtol=1e-3)
    # The two stores' daily means differ in the last float digits; a degree-day sum that
    # lands on a day's edge may then cross it a day apart.
    dates = zip(served.forecasts["harvest_p50"], embedded.forecasts["harvest_p50"], strict=True)
    days_apart = [abs((a - b).days) for a, b in dates]
    assert max(days_apart) <= 1
    assert [(c.crop, c.platform, c.start) for c in served.campaigns] == [
        (c.crop, c.platform, c.start) for c in embedded.campaigns
    ]


def test_the_chain_refuses_a_date_with_too_little_history(world):
    with pytest.raises(ChainError, match="harvested season"):
        _run(world, date(2024, 3, 1))


# Five CLI runs in a row (backfill, forecast, what-if, two refusals) take about 4 min on a
# busy 2-core machine, so the suite's 300 s per test would fail it under load while it
# passes alone. Each run keeps its own bound; the test as a whole gets room for all five.
@pytest.mark.timeout(1500)
def test_forecast_run_command_records_a_run(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path)
    agrimatch = [sys.executable, "-m", "agrimatch"]
    backfilled = subprocess.run(
        [*agrimatch, "sim", "backfill", "--seasons", "3", "--interval", "21600", "--no-realism"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert backfilled.returncode == 0, backfilled.stderr[-2000:]
    ran = subprocess.run(
        [*agrimatch, "forecast", "run", "--as-of", "2026-04-15"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "forecast as of 2026-04-15" in ran.stdout and "garlic" in ran.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    with session_factory(engine)() as session:
        [run] = session.query(JobRun).all()
        assert run.status == "ok" and run.model_version and json.loads(run.metrics_json or "{}")
        assert session.query(FieldForecast).count() >= 5
    engine.dispose()
    what_if = subprocess.run(
        [*agrimatch, "forecast", "what-if", "--as-of", "2026-04-15", "--area", "garlic=1.5",
         "--weather", "drought"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert what_if.returncode == 0, what_if.stderr[-2000:]
    assert "nothing saved" in what_if.stdout and "garlic" in what_if.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    with session_factory(engine)() as session:
        assert session.query(JobRun).count() == 1  # the what-if recorded nothing
    engine.dispose()
    malformed = subprocess.run(
        [*agrimatch, "forecast", "what-if", "--area", "garlic"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert malformed.returncode == 2 and "CROP=NUMBER" in malformed.stderr
    bad = subprocess.run(
        [*agrimatch, "forecast", "run", "--as-of", "2024-01-10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "harvested season" in bad.stderr


def test_scheduler_runs_a_job_now_and_keeps_its_schedule_across_restarts(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path)
    agrimatch = [sys.executable, "-m", "agrimatch"]
    # Nothing backfilled: no field is in season, and the run is recorded as ok with 0 fields.
    once = subprocess.run(
        [*agrimatch, "scheduler", "--run-now", "refresh-features"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert once.returncode == 0, once.stderr[-2000:]
    assert "refresh-features" in once.stdout and "ok" in once.stdout
    env["COLUMNS"] = "400"  # one log record per line
    for _ in range(2):  # start, stop, start again: the job store keeps three jobs
        process = subprocess.Popen(
            [*agrimatch, "scheduler"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # SIGTERM only once the scheduler says its jobs are scheduled: its handlers are
        # installed by then. A fixed sleep sent it, on a loaded machine, to a process still
        # importing, which died of the signal (exit -15) before it had stored anything.
        scheduled = _lines_containing(process, " next at ", count=3, timeout_s=240)
        assert len(scheduled) == 3, scheduled
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    with engine.connect() as connection:
        from sqlalchemy import text

        ids = sorted(r[0] for r in connection.execute(text("SELECT id FROM apscheduler_jobs")))
    engine.dispose()
    assert ids == ["forecast", "refresh-features", "retrain"]


def _lines_containing(process, needle: str, count: int, timeout_s: float) -> list[str]:
    """The first ``count`` lines of ``process``'s stderr holding ``needle``, waiting at most
    ``timeout_s``; stderr is drained to the end in the background so the process never
    blocks on a full pipe."""
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stderr], daemon=True).start()
    found: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(found) < count and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None and lines.empty():
                break
            continue
        if needle in line:
            found.append(line)
    return found


def test_a_long_keeping_glut_gets_a_campaign_before_it_spoils(world):
    # Garlic keeps ~6 months: the demand horizon reaches past its spoilage date, so the
    # default world's garlic surplus shows value at risk and gets a campaign.
    result = _run(world)
    garlic = [c for c in result.campaigns if c.crop == "garlic"]
    assert garlic, [c.crop for c in result.campaigns]
    assert all(c.value_at_risk_cny > 0 and c.reasons for c in garlic)
    # Selling starts before the first of the surplus would spoil.
    assert min(c.start for c in garlic) < min(c.spoils_from for c in garlic)
    assert result.demand["week"].max() >= min(c.spoils_from for c in garlic) - timedelta(days=7)


def test_what_if_on_the_chain_reweathers_the_season_and_more_garlic_more_surplus(world):
    from forecasting.chain import forecast_as_of, train_yield_model
    from forecasting.chain_data import load_chain_data
    from forecasting.chain_whatif import chain_field_model, chain_what_if
    from forecasting.harvest import weekly_supply
    from forecasting.whatif import PlanChange

    store, sessions, _ = world
    with sessions() as session:
        data = load_chain_data(store, session, date(2022, 1, 1), AS_OF)
        saved = session.query(Recommendation).count()
    with threadpool_limits(1):
        trained = train_yield_model(data, AS_OF)
        baseline = forecast_as_of(data, AS_OF, trained)
        fields = chain_field_model(data, AS_OF, trained)
        plan = baseline.forecasts[["farm", "field", "region", "crop", "soil", "area_ha", "year",
                                   "planted_on"]]  # fmt: skip
        normal, dry = (weekly_supply(fields(plan, w)) for w in (None, "drought"))
        bigger = chain_what_if(
            data, AS_OF, trained, baseline, PlanChange(area_scale_by_crop={"garlic": 1.5})
        )
    # The default world's model never saw a drought (tests/test_yield_model.py shows one that
    # did lowering P50): here the scenario must reach the features and change the supply.
    from forecasting.chain_whatif import WEATHER_SCENARIOS, reweather
    from forecasting.features import field_features

    daily = data.until(AS_OF).daily
    drier = reweather(daily, plan, WEATHER_SCENARIOS["drought"])
    as_was = field_features(daily, plan, AS_OF)
    as_dry = field_features(drier, plan, AS_OF)
    assert (as_dry["rain_mm"] <= 0.2 * as_was["rain_mm"] + 1e-9).all()
    assert as_dry["dry_days"].sum() > as_was["dry_days"].sum()
    assert not np.allclose(dry["supply_kg_p50"].sum(), normal["supply_kg_p50"].sum())
    compared = bigger.comparison().set_index("crop").loc["garlic"]
    assert compared["peak_surplus_kg_p50_after"] > compared["peak_surplus_kg_p50_before"]
    assert compared["value_at_risk_cny_after"] >= compared["value_at_risk_cny_before"]
    assert bigger.changed.planting is not None
    with pytest.raises(ValueError, match="unknown weather scenario"):
        fields(plan, "locusts")
    # Maize follows the garlic in June: planned in the registry, not in the ground yet,
    # and forecast all the same; sown three weeks later, it is harvested later.
    with threadpool_limits(1):
        later = chain_what_if(
            data, AS_OF, trained, baseline, PlanChange(planting_shift_days_by_crop={"maize": 21})
        )
    maize = [o.supply[o.supply["crop"] == "maize"] for o in (later.baseline, later.changed)]
    assert all(m["supply_kg_p50"].sum() > 0 for m in maize)
    centre = [(m["week"].map(date.toordinal) * m["supply_kg_p50"]).sum() / m["supply_kg_p50"].sum()
              for m in maize]  # fmt: skip
    assert centre[1] - centre[0] > 10
    # Sown 14 days late the maize runs into the autumn: the killing frost the simulator
    # applies (agronomy.frost) ends its season within the year, not next spring, and takes
    # the share of yield it had not reached.
    with threadpool_limits(1):
        late = chain_what_if(
            data, AS_OF, trained, baseline, PlanChange(planting_shift_days_by_crop={"maize": 14})
        )
    for what_if in (later, late):
        moved = what_if.changed.forecasts
        moved = moved[moved["crop"] == "maize"]
        assert all(d < date(2027, 1, 1) for d in moved["harvest_p90"])
        assert (moved["p_frost_end"] > 0.05).all() and (moved["frost_yield_factor"] < 1).all()
        supply = [o.supply.loc[o.supply["crop"] == "maize", "supply_kg_p50"].sum()
                  for o in (what_if.baseline, what_if.changed)]  # fmt: skip
        assert supply[1] < supply[0]
    kept = baseline.forecasts
    assert (kept.loc[kept["crop"] == "maize", "frost_yield_factor"] > 0.999).all()
    with sessions() as session:
        assert session.query(Recommendation).count() == saved  # computed, not saved
