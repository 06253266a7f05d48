"""The application layer: one forecast service under the CLI, the scheduler and the API."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest
from threadpoolctl import threadpool_limits

from forecasting.errors import ChainError, InvalidRequest
from forecasting.service import ForecastService
from forecasting.whatif import PlanChange

AS_OF = date(2026, 4, 15)


@pytest.fixture(scope="module")
def service(backfilled_world):
    store, sessions, root = backfilled_world("default", seasons=3)
    # The world's own model dir, as the other tests of this world use: a yield model trained
    # on the same seasons is loaded, not fitted again (half a forecast run's time).
    return ForecastService(store, sessions, root / "models")


@pytest.fixture(scope="module")
def saved(service):
    with threadpool_limits(1):
        run = service.run_forecast(AS_OF)
    assert run.ok, run.run.error
    return run


def test_a_forecast_run_is_read_back_with_its_campaigns_in_date_order(service, saved):
    results = service.results(AS_OF)
    assert results is not None and results.run_id == saved.run.id
    assert results.model_version == saved.result.model_version
    assert len(results.fields) == len(saved.result.forecasts)
    assert results.campaigns, "the default world's garlic surplus gets campaigns"
    starts = [c.start for c in results.campaigns]
    assert starts == sorted(starts)
    assert {c.platform for c in results.campaigns} <= {p.id for p in saved.result.market.platforms}


def test_each_campaign_says_what_it_alone_saves_not_the_whole_surplus(service, saved):
    campaigns = service.results(AS_OF).campaigns
    assert all(c.value_saved_cny > 0 for c in campaigns)
    # One surplus episode's campaigns share its value at risk; each saves its own part.
    assert (
        sum(c.value_saved_cny for c in campaigns)
        <= sum({c.surplus_value_at_risk_cny for c in campaigns}) * 1.5
    )  # plus the storage each avoids
    if len(campaigns) > 1:
        assert len({c.value_saved_cny for c in campaigns}) > 1


def test_weekly_supply_demand_and_balance_are_stored_with_the_run(service, saved):
    results = service.results(AS_OF)
    assert len(results.supply) == len(saved.result.supply)
    assert len(results.demand) == len(saved.result.demand)
    assert len(results.balance) == len(saved.result.balance)
    stored = sum(s.supply_kg_p50 for s in results.supply)
    assert stored == pytest.approx(float(saved.result.supply["supply_kg_p50"].sum()))
    frame = saved.result.balance
    for week, row in zip(results.balance, frame.itertuples(), strict=True):
        assert (week.crop, week.region, week.week) == (row.crop, row.region, row.week)
        assert week.supply_kg_p10 <= week.supply_kg_p50 <= week.supply_kg_p90
        assert week.surplus_kg_p50 == pytest.approx(row.surplus_kg_p50)
        assert week.p_surplus == pytest.approx(row.p_surplus)


def test_planting_is_read_back_per_farm_with_reasons(service, saved):
    planting = service.results(AS_OF).planting
    assert planting and all(p.farms for p in planting)
    for region in planting:
        total = sum(f.recommended_ha for f in region.farms)
        assert total == pytest.approx(region.recommended_ha, abs=0.05 * len(region.farms))
    assert any(f.reasons for p in planting for f in p.farms)


def test_the_newest_run_is_the_default_and_an_unknown_date_has_none(service, saved):
    assert service.results().as_of >= AS_OF
    assert service.results(date(2001, 1, 1)) is None


def test_a_what_if_with_no_change_gives_exactly_the_saved_recommendations(service, saved):
    with threadpool_limits(1):
        result = service.what_if(AS_OF, PlanChange())
    stored = service.results(AS_OF)
    changed = sorted(result.changed.campaigns, key=lambda c: (c.start, c.platform))
    assert [
        (c.platform, c.crop, c.region, c.start, c.end, round(c.target_kg)) for c in changed
    ] == [
        (c.platform, c.crop, c.region, c.start, c.end, round(c.target_kg))
        for c in sorted(stored.campaigns, key=lambda c: (c.start, c.platform))
    ]
    assert result.changed.planting is not None
    regions = result.changed.planting.regions
    assert sorted(
        (r.crop, r.region, round(float(r.recommended_ha), 2)) for r in regions.itertuples()
    ) == sorted((p.crop, p.region, p.recommended_ha) for p in stored.planting)
    assert result.changed.balance.equals(result.baseline.balance)


def test_a_plan_change_naming_a_crop_the_plan_lacks_fails_before_any_model_runs(service):
    fresh = ForecastService(service.store, service.sessions, service.model_dir.parent / "unused")
    with pytest.raises(InvalidRequest, match="no field grows pineapple"):
        fresh.what_if(AS_OF, PlanChange(area_scale_by_crop={"pineapple": 2.0}))
    with pytest.raises(InvalidRequest, match="unknown weather scenario 'locusts'"):
        fresh.what_if(AS_OF, PlanChange(weather="locusts"))
    assert not fresh.model_dir.exists()  # no model was trained or loaded


def test_a_date_with_too_little_history_fails_from_the_registry_alone(service):
    with pytest.raises(ChainError, match="import past harvests"):
        service.check_forecast(date(2024, 3, 1))
    with pytest.raises(ChainError, match="no field-season is in progress"):
        service.check_forecast(date(2010, 1, 1))


def test_importing_the_chain_loads_no_scheduler():
    code = (
        "import sys, forecasting.chain, forecasting.recommend, forecasting.errors;"
        "assert 'apscheduler' not in sys.modules, 'apscheduler loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_runs_results_are_read_once_and_a_rerun_is_read_anew(service, saved):
    first = service.results(AS_OF)
    assert service.results(AS_OF) is first  # served from memory, not the registry again
    with threadpool_limits(1):
        rerun = service.run_forecast(AS_OF)
    assert rerun.ok
    fresh = service.results(AS_OF)
    assert fresh.run_id == rerun.run.id != first.run_id
