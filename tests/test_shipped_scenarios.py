"""The paper's cases through the whole chain: a garlic glut and a snow-lotus-fruit surge.

Each shipped scenario runs at 5 % of its farms (platform demand scaled alike,
so the glut stays a glut) for three seasons; the chain runs as of 60 days
before the third season's median harvest peak.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from threadpoolctl import threadpool_limits

from forecasting.chain import ChainResult, forecast_as_of, train_yield_model
from forecasting.chain_data import load_chain_data

SCALE = 0.05


def _chain(world, crop: str, year: int) -> tuple[ChainResult, date]:
    store, sessions, _ = world
    with sessions() as session:
        data = load_chain_data(store, session, date(year - 4, 1, 1), date(year + 1, 1, 1))
    fields = data.seasons[(data.seasons["year"] == year) & (data.seasons["crop"] == crop)]
    peaks = sorted(fields["harvest_peak"])
    peak = peaks[len(peaks) // 2]
    as_of = peak - timedelta(days=60)
    with threadpool_limits(1):
        result = forecast_as_of(data, as_of, train_yield_model(data, as_of))
    return result, peak


@pytest.fixture(scope="module")
def garlic_glut(backfilled_world):
    return _chain(backfilled_world("garlic-glut", seasons=3, scale=SCALE), "garlic", 2023)


@pytest.fixture(scope="module")
def snow_lotus_surge(backfilled_world):
    world = backfilled_world("snow-lotus-surge", seasons=3, scale=SCALE)
    return _chain(world, "snow_lotus_fruit", 2018)


def test_garlic_glut_gets_a_campaign_before_the_harvest_peak(garlic_glut):
    result, peak = garlic_glut
    garlic = [c for c in result.campaigns if c.crop == "garlic"]
    assert garlic, "no campaign for the garlic glut"
    first = min(garlic, key=lambda c: c.start)
    assert first.start < peak
    assert first.start >= result.as_of + timedelta(days=10)  # Pinduoduo's lead time
    assert all(c.value_at_risk_cny > 0 and c.target_kg > 0 and c.reasons for c in garlic)
    # Ranked by the value at risk they save.
    risks = [c.value_at_risk_cny for c in result.campaigns]
    assert risks == sorted(risks, reverse=True)


def test_garlic_glut_plants_less_garlic_next_season(garlic_glut):
    result, _ = garlic_glut
    assert result.planting is not None, result.planting_error
    regions = result.planting.regions.set_index("crop")
    garlic = regions.loc["garlic"]
    assert garlic["recommended_ha"] < 0.9 * garlic["current_ha"]
    assert garlic["expected_price_cny_per_kg_after"] > garlic["expected_price_cny_per_kg_before"]
    # Part of the land goes to the scenario's other crop (the rest lies fallow where
    # maize would not pay its cost), and no farm has more land than it had.
    maize = regions.loc["maize"]
    assert maize["recommended_ha"] > maize["current_ha"]
    assert regions["recommended_ha"].sum() <= regions["current_ha"].sum() + 1e-6


def test_snow_lotus_surge_plants_more_snow_lotus_fruit(snow_lotus_surge):
    result, _ = snow_lotus_surge
    assert result.planting is not None, result.planting_error
    fruit = result.planting.regions.set_index("crop").loc["snow_lotus_fruit"]
    assert fruit["recommended_ha"] > 1.05 * fruit["current_ha"]
    # Demand outgrows supply: nothing to clear.
    assert not [c for c in result.campaigns if c.crop == "snow_lotus_fruit"]
