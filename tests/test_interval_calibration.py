"""Yield intervals recalibrated on the forecasts stored for harvested seasons.

The pure rule first (which rows, how far, and when it stays with the model's own
calibration), then the chain on the backfilled default world with forecasts stored
for its harvested season in the registry, and without.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, select
from threadpoolctl import threadpool_limits

from agrimatch.agronomy import CROPS
from agrimatch.registry.models import FieldForecast, JobRun, Season
from forecasting.chain import run_chain
from forecasting.forecast_records import stored_field_forecasts
from forecasting.interval_calibration import (
    CROSS_VALIDATED,
    MIN_STORED_RESIDUALS,
    PAST_YIELDS,
    STORED_RESIDUALS,
    calibrate_intervals,
    stored_residuals,
)
from forecasting.yield_model import YieldQuantileModel

AS_OF = date(2026, 4, 15)
GARLIC = CROPS["garlic"].potential_yield_t_ha


@pytest.fixture(scope="module")
def model() -> YieldQuantileModel:
    rng = np.random.default_rng(3)
    rows = [
        {"crop": "garlic", "soil": "loam", "region": "r", "year": year, "x": rng.uniform()}
        for year in (2022, 2023, 2024, 2025)
        for _ in range(30)
    ]
    X = pd.DataFrame(rows)
    y = (0.6 + 0.2 * X["x"] + 0.05 * rng.standard_normal(len(X))) * GARLIC
    with threadpool_limits(1):
        return YieldQuantileModel(feature_columns=["x"], max_iter=20).fit(X, y)


def _forecasts(model: YieldQuantileModel, lead_days: int = 40) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "farm": [f"f{i}" for i in range(4)],
            "field": "a",
            "region": "r",
            "crop": "garlic",
            "soil": "loam",
            "year": 2026,
            "planted_on": [date(2025, 10, 1)] * 3 + [date(2026, 5, 1)],  # the last: not sown
            "x": [0.2, 0.5, 0.8, np.nan],
            "harvest_p50": AS_OF + timedelta(days=lead_days),
        }
    )
    quantiles = model.predict_quantiles(frame)
    for q in ("p10", "p50", "p90"):
        frame[f"yield_t_ha_{q}"] = quantiles[q].to_numpy()
    return frame


def _residuals(
    count: int, lead_days: int, low: float, high: float, years: tuple[int, ...] = (2024, 2025)
) -> pd.DataFrame:
    """``count`` field-seasons of ``years`` (in turn) whose truth fell ``low`` below the P10
    and ``high`` above the P90 (shares of the potential), at ``lead_days``."""
    return pd.DataFrame(
        {
            "farm": [f"g{i}" for i in range(count)],
            "field": "a",
            "year": [years[i % len(years)] for i in range(count)],
            "crop": "garlic",
            "lead_days": lead_days,
            "residual_p10": -low,
            "residual_p90": high,
        }
    )


HISTORY = pd.DataFrame({"crop": ["garlic"] * 2, "region": "r", "year": [2024, 2025]})


def test_enough_stored_residuals_near_the_lead_widen_the_interval(model):
    forecasts = _forecasts(model)
    residuals = _residuals(MIN_STORED_RESIDUALS, 45, low=0.1, high=0.05)
    out = calibrate_intervals(forecasts, model, residuals, HISTORY, AS_OF)
    sown = out.iloc[:3]
    assert list(sown["calibration"]) == [STORED_RESIDUALS] * 3
    np.testing.assert_allclose(
        sown["yield_t_ha_p10"], forecasts["yield_t_ha_p10"][:3] - 0.1 * GARLIC
    )
    ceiling = model.ceiling_t_ha(forecasts.iloc[:3])
    widened = np.minimum(forecasts["yield_t_ha_p90"][:3] + 0.05 * GARLIC, ceiling)
    np.testing.assert_allclose(sown["yield_t_ha_p90"], widened)
    assert (sown["yield_t_ha_p90"] <= ceiling + 1e-9).all()
    # The model's own quantiles are kept: the next calibration's residuals use them.
    np.testing.assert_allclose(sown["yield_t_ha_p90_model"], forecasts["yield_t_ha_p90"][:3])
    assert out.iloc[3]["calibration"] == PAST_YIELDS
    assert list(out["training_seasons"]) == [4, 4, 4, 2]  # the not-sown: 2 past seasons
    assert list(out["interval_trust"]) == ["ok", "ok", "ok", "few_seasons"]


def test_residuals_inside_the_interval_narrow_it(model):
    forecasts = _forecasts(model)
    out = calibrate_intervals(
        forecasts, model, _residuals(40, 40, low=-0.05, high=-0.05), HISTORY, AS_OF
    )
    width = out["yield_t_ha_p90"] - out["yield_t_ha_p10"]
    before = forecasts["yield_t_ha_p90"] - forecasts["yield_t_ha_p10"]
    assert (width[:3] < before[:3]).all()
    assert (out["yield_t_ha_p10"] <= out["yield_t_ha_p50"]).all()
    assert (out["yield_t_ha_p50"] <= out["yield_t_ha_p90"]).all()


@pytest.mark.parametrize(
    "residuals",
    [
        _residuals(0, 40, 0.1, 0.1),  # nothing stored
        _residuals(MIN_STORED_RESIDUALS - 1, 40, 0.1, 0.1),  # too few field-seasons
        _residuals(60, 90, 0.1, 0.1),  # stored at another lead
        _residuals(60, 40, 0.1, 0.1).assign(crop="maize"),  # of another crop
        _residuals(60, 40, 0.1, 0.1, years=(2025,)),  # of one season: its weather only
    ],
    ids=["none", "too-few", "other-lead", "other-crop", "one-season"],
)
def test_without_enough_stored_residuals_the_models_own_calibration_stays(model, residuals):
    forecasts = _forecasts(model)
    out = calibrate_intervals(forecasts, model, residuals, HISTORY, AS_OF)
    assert list(out["calibration"][:3]) == [CROSS_VALIDATED] * 3
    for q in ("p10", "p50", "p90"):
        np.testing.assert_array_equal(out[f"yield_t_ha_{q}"], forecasts[f"yield_t_ha_{q}"])


def test_a_field_forecast_daily_counts_once_at_its_nearest_lead(model):
    # One field-season short of the minimum, each stored every day for a month: too few.
    daily = pd.concat(
        [_residuals(MIN_STORED_RESIDUALS - 1, lead, 0.1, 0.1) for lead in range(30, 60)]
    )
    out = calibrate_intervals(_forecasts(model), model, daily, HISTORY, AS_OF)
    assert set(out["calibration"][:3]) == {CROSS_VALIDATED}


def test_stored_residuals_score_the_model_quantiles_against_the_truth():
    stored = pd.DataFrame(
        {
            "farm": ["a", "a", "b"],
            "field": "x",
            "year": [2025, 2025, 2026],
            "crop": "garlic",
            "as_of": [date(2025, 4, 1), date(2025, 6, 1), date(2026, 4, 1)],
            "yield_t_ha_p10": [9.0, 9.0, 9.0],
            "yield_t_ha_p90": [14.0, 14.0, 14.0],
            "yield_t_ha_p10_model": [10.0, np.nan, 10.0],
            "yield_t_ha_p90_model": [12.0, np.nan, 12.0],
        }
    )
    history = pd.DataFrame(
        {
            "farm": ["a"],
            "field": "x",
            "year": [2025],
            "yield_t_ha": [13.0],
            "harvest_peak": [date(2025, 5, 21)],
        }
    )
    residuals = stored_residuals(stored, history)
    # b's season is not harvested; a's June forecast came after its harvest peak.
    assert len(residuals) == 1
    row = residuals.iloc[0]
    assert row["lead_days"] == 50
    assert row["residual_p10"] == pytest.approx(3.0 / GARLIC)
    assert row["residual_p90"] == pytest.approx(1.0 / GARLIC)


# --- the chain, with forecasts stored in the registry ------------------------------------


@pytest.fixture(scope="module")
def world(backfilled_world):
    return backfilled_world("default", seasons=3)


@pytest.fixture
def stored_for_last_season(world) -> Iterator[int]:
    """Forecasts of every garlic field-season harvested before AS_OF, stored as runs would
    have every ten days from 120 to 10 days before its harvest peak, with intervals far
    too narrow (P10 = P90 = 70 % of the truth). Removed afterwards."""
    _, sessions, _ = world
    with sessions.begin() as session:
        seasons = session.scalars(
            select(Season).where(
                Season.crop == "garlic", Season.harvest_end < AS_OF, Season.yield_t_ha.is_not(None)
            )
        ).all()
        run = JobRun(
            job="test-stored-forecasts",
            as_of=AS_OF,
            status="ok",
            started_at=datetime.now(UTC),
            model_version="test-stored",
        )
        session.add(run)
        session.flush()
        count = 0
        for s in seasons:
            for lead in range(10, 121, 10):
                low = 0.7 * s.yield_t_ha
                session.add(
                    FieldForecast(
                        run_id=run.id,
                        as_of=s.harvest_peak - timedelta(days=lead),
                        model_version="test-stored",
                        farm_id=s.farm_id,
                        field_id=s.field_id,
                        year=s.year,
                        crop="garlic",
                        yield_t_ha_p10=low,
                        yield_t_ha_p50=low,
                        yield_t_ha_p90=low,
                        yield_t_ha_p10_model=low,
                        yield_t_ha_p90_model=low,
                    )
                )
            count += 1
        run_id = run.id
    try:
        yield count
    finally:
        with sessions.begin() as session:
            session.execute(delete(FieldForecast).where(FieldForecast.run_id == run_id))
            session.execute(delete(JobRun).where(JobRun.id == run_id))


def test_the_chain_calibrates_on_the_forecasts_stored_for_a_harvested_season(
    world, stored_for_last_season
):
    store, sessions, root = world
    assert stored_for_last_season >= MIN_STORED_RESIDUALS
    with sessions() as session:
        assert len(stored_field_forecasts(session, AS_OF)) == 12 * stored_for_last_season
        with threadpool_limits(1):
            result = run_chain(store, session, AS_OF, model_dir=root / "models")
    sown = result.forecasts[result.forecasts["planted_on"].map(lambda d: d <= AS_OF)]
    garlic = sown[sown["crop"] == "garlic"]
    assert len(garlic) and set(garlic["calibration"]) == {STORED_RESIDUALS}
    # Every stored truth was 43 % above its P90: the P90 rises (to the ceiling at most).
    assert (garlic["yield_t_ha_p90"] >= garlic["yield_t_ha_p90_model"]).all()
    assert (garlic["yield_t_ha_p90"] > garlic["yield_t_ha_p90_model"]).any()
    others = sown[sown["crop"] != "garlic"]
    assert set(others["calibration"]) <= {CROSS_VALIDATED}
