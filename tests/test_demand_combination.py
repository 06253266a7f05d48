"""The combination on level steps: the step found and dated, the history re-levelled, and a
step up and a step down followed without hurting a calm series.

Synthetic weekly series of four years with a yearly cycle and 8 % weekly noise:
one steps UP x3 and one DOWN to 40 % 34 weeks before the origin, so that for
most of the 26-week horizon the base week (a year before the target) is past
the step too: where our base, grown by a growth that holds the step, counted
it twice.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from forecasting.demand_combination import (
    level_step,
    level_steps,
    relevel,
)
from tests.stepped_demand import START, combined_forecasts, crop_wape, stepped_series

STEP_AT = 147
ORIGIN = START + timedelta(weeks=181)
HORIZON = 26


def _series(crop: str, factor: float, seed: int) -> pd.DataFrame:
    return stepped_series(crop, factor, seed, step_at=STEP_AT)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return pd.concat(
        [_series("up", 3.0, 11), _series("down", 0.4, 12), _series("calm", 1.0, 13)],
        ignore_index=True,
    )


def test_level_step_dates_and_sizes_a_step() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(160)
    kg = np.exp(0.05 * rng.standard_normal(160) + np.where(t >= 130, np.log(2.5), 0.0))
    found = level_step(kg)
    assert found is not None
    at, step = found
    # The 4-week mean crosses half-way two weeks in.
    assert 129 <= at <= 133
    assert step == pytest.approx(np.log(2.5), abs=0.15)


def test_level_steps_ignore_calm_series_and_relevel_lifts_the_weeks_before(
    history: pd.DataFrame,
) -> None:
    known = history[history["week"] <= ORIGIN]
    steps = level_steps(known, None, ORIGIN)
    assert set(steps) == {("pdd", "up", "r"), ("pdd", "down", "r")}
    step_week = START + timedelta(weeks=STEP_AT)
    for (_, crop, _), found in steps.items():
        assert abs((found.week - step_week).days) <= 3 * 7, crop
    assert steps[("pdd", "up", "r")].log_step == pytest.approx(np.log(3.0), abs=0.2)
    assert steps[("pdd", "down", "r")].log_step == pytest.approx(np.log(0.4), abs=0.2)

    moved = relevel(known, steps)
    ratio = moved["quantity_kg"].to_numpy() / known["quantity_kg"].to_numpy()
    weeks = np.array([(w - START).days // 7 for w in known["week"]])
    for key, found in steps.items():
        rows = (known["crop"] == key[1]).to_numpy()
        # Well before the step: the whole step; well after it: (nearly) nothing.
        long_before = rows & (weeks < STEP_AT - 13)
        assert np.allclose(ratio[long_before], np.exp(found.log_step))
        after = ratio[rows & (weeks >= STEP_AT + 4)]
        assert np.all(np.abs(np.log(after)) < 0.2), key
        # In between, each week moves by a share of the step, never more.
        near = np.log(ratio[rows & (weeks >= STEP_AT - 13) & (weeks < STEP_AT + 4)])
        assert np.all(near / found.log_step >= -1e-9)
        assert np.all(near / found.log_step <= 1 + 1e-9)
    assert np.allclose(ratio[(known["crop"] == "calm").to_numpy()], 1.0)


@pytest.fixture(scope="module")
def forecasts(history: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return combined_forecasts(history, ORIGIN, HORIZON)[1]


@pytest.mark.parametrize("crop", ["up", "down"])
def test_a_step_is_followed(
    history: pd.DataFrame, forecasts: dict[str, pd.DataFrame], crop: str
) -> None:
    combined = crop_wape(history, forecasts["combined"], crop)
    # The trees alone count the step twice once the base week is past it.
    assert combined < 0.5 * crop_wape(history, forecasts["ours"], crop)
    assert combined < 0.15  # the noise is 8 %


def test_a_calm_series_is_not_hurt(
    history: pd.DataFrame, forecasts: dict[str, pd.DataFrame]
) -> None:
    combined = crop_wape(history, forecasts["combined"], "calm")
    worst = max(crop_wape(history, forecasts[name], "calm") for name in ("ours", "mstl"))
    assert combined <= worst + 0.01
    assert combined < 0.15


def test_intervals_are_ordered(forecasts: dict[str, pd.DataFrame]) -> None:
    out = forecasts["combined"]
    assert len(out) == 3 * HORIZON
    assert (out["demand_kg_p10"] <= out["demand_kg_p50"]).all()
    assert (out["demand_kg_p50"] <= out["demand_kg_p90"]).all()
