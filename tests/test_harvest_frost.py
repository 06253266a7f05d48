"""Harvest windows end where the simulated crop ends: at maturity or at a killing frost.

The frost rule is the simulator's own (:mod:`agrimatch.agronomy.frost`); the
forecaster projects it with the region's minimum-temperature climatology. On
the default world (Zhongmou): maize sown on time matures before the first
killing frost, so its window is what it was without the frost rule; sown late
it meets the frost, and the window ends within the year with a yield loss;
autumn-sown garlic overwinters.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from agrimatch.agronomy import CROPS
from agrimatch.agronomy.cultivars import gdd_to_maturity
from agrimatch.agronomy.frost import killing_temperature_c, yield_kept_at_end
from forecasting.chain_data import load_chain_data
from forecasting.harvest import gdd_climatology, harvest_window, weekly_supply

AS_OF = date(2026, 4, 15)
MAIZE_SOWN = date(2026, 6, 10)  # the default scenario's farm-01 maize


@pytest.fixture(scope="module")
def daily(backfilled_world) -> pd.DataFrame:
    store, sessions, _ = backfilled_world("default", seasons=3)
    with sessions() as session:
        return load_chain_data(store, session, date(2022, 1, 1), AS_OF).until(AS_OF).daily


def test_the_frost_climatology_is_the_crops_killing_temperature_by_day(daily):
    maize = gdd_climatology(daily, "maize")
    garlic = gdd_climatology(daily, "garlic")
    assert maize.p_killing_frost is not None and garlic.p_killing_frost is not None
    july, december = 195, 350
    assert maize.p_killing_frost[july] < 1e-3 < maize.p_killing_frost[december]
    # Garlic's killing night is far colder than maize's: it overwinters.
    assert killing_temperature_c(CROPS["garlic"]) < killing_temperature_c(CROPS["maize"])
    assert garlic.p_killing_frost[december] < maize.p_killing_frost[december]


def test_a_normal_sowing_is_unchanged_by_the_frost_rule(daily):
    for crop, sown in (("maize", MAIZE_SOWN), ("garlic", date(2025, 10, 1))):
        climatology = gdd_climatology(daily, crop)
        frostless = replace(climatology, p_killing_frost=None)
        with_frost = harvest_window(crop, climatology, sown, AS_OF, np.nan, region="zhongmou")
        without = harvest_window(crop, frostless, sown, AS_OF, np.nan, region="zhongmou")
        assert (with_frost.p10, with_frost.p50, with_frost.p90) == (
            without.p10,
            without.p50,
            without.p90,
        )
        assert with_frost.yield_factor > 0.999 and without.yield_factor == pytest.approx(1.0)


def test_maize_sown_late_ends_at_the_frost_within_the_year_with_a_loss(daily):
    climatology = gdd_climatology(daily, "maize")
    frostless = replace(climatology, p_killing_frost=None)
    late = MAIZE_SOWN + timedelta(days=21)
    window = harvest_window("maize", climatology, late, AS_OF, np.nan, region="zhongmou")
    unbounded = harvest_window("maize", frostless, late, AS_OF, np.nan, region="zhongmou")
    # Without the frost the degree-days of winter never finish it before spring.
    assert unbounded.p90 > date(2027, 1, 31)
    assert date(2026, 10, 15) < window.p50 <= window.p90 < date(2027, 1, 1)
    assert window.p_frost_end > 0.5 and window.yield_factor < 0.99
    # Supply carries the loss: the same field's kilograms, less the share not reached.
    fields = pd.DataFrame(
        [
            {"crop": "maize", "region": "zhongmou", "area_ha": 2.0,
             "yield_t_ha_p10": 7.0 * f, "yield_t_ha_p50": 8.0 * f, "yield_t_ha_p90": 9.0 * f,
             "harvest_p10": w.p10, "harvest_p50": w.p50, "harvest_p90": w.p90}
            for w, f in ((window, window.yield_factor), (unbounded, 1.0))
        ]
    )  # fmt: skip
    frosted, open_ended = (weekly_supply(fields.iloc[[i]]) for i in (0, 1))
    assert frosted["supply_kg_p50"].sum() < open_ended["supply_kg_p50"].sum()
    assert frosted["week"].max() < date(2027, 1, 1) < open_ended["week"].max()


def test_a_certain_frost_keeps_the_share_the_simulated_crop_keeps(daily):
    # One rule for both sides (agronomy.frost.yield_kept_at_end): a frost certain on 1
    # October ends maize sown on 1 July during grain filling, keeping the filled share.
    climatology = gdd_climatology(daily, "maize")
    sown, frost_day = MAIZE_SOWN + timedelta(days=21), date(2026, 10, 1)
    chance = np.zeros(366)
    chance[frost_day.timetuple().tm_yday - 1] = 1.0
    certain = replace(climatology, p_killing_frost=chance)
    window = harvest_window("maize", certain, sown, AS_OF, np.nan, region="zhongmou")
    mean, _ = climatology.daily(sown, (frost_day - sown).days + 1)
    progress = mean.sum() / gdd_to_maturity("maize", "zhongmou")
    kept = float(yield_kept_at_end(CROPS["maize"], progress))
    assert 0.05 < kept < 0.95  # mid grain filling: the rule matters
    assert window.p_frost_end == pytest.approx(1.0, abs=0.01)
    assert window.yield_factor == pytest.approx(kept, abs=0.01)
