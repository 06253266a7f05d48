"""Planting inputs from forecasts: current areas, yields, costs, prices and demand curves."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from agrimatch.agronomy import CROPS
from forecasting.economics import (
    DEFAULT_PRICE_ELASTICITY,
    PRICE_TAKER_ELASTICITY,
    WEEKS_PER_YEAR,
    crop_economics,
    current_plan,
)
from forecasting.frames import DEMAND_COLUMNS
from forecasting.planting import CropEconomics, PlantingConstraints, recommend_planting

MONDAY = date(2024, 1, 1)
NO_DEMAND = pd.DataFrame(columns=list(DEMAND_COLUMNS))
NO_SALES = pd.DataFrame(
    columns=["platform", "crop", "region", "week", "quantity_kg", "orders", "price_cny_per_kg"]
)


def _weeks(n: int, first: date = MONDAY) -> list[date]:
    return [first + timedelta(weeks=k) for k in range(n)]


def _field(farm, field, region, crop, area_ha, p10, p50):
    return {
        "farm": farm,
        "field": field,
        "region": region,
        "crop": crop,
        "area_ha": area_ha,
        "year": 2024,
        "yield_t_ha_p10": p10,
        "yield_t_ha_p50": p50,
    }


def _demand(crop, region, weeks, weekly_kg_by_platform):
    return pd.DataFrame(
        [
            {
                "platform": platform,
                "crop": crop,
                "region": region,
                "week": week,
                "demand_kg_p10": 0.8 * kg,
                "demand_kg_p50": kg,
                "demand_kg_p90": 1.2 * kg,
            }
            for week in weeks
            for platform, kg in weekly_kg_by_platform.items()
        ],
        columns=list(DEMAND_COLUMNS),
    )


def _sales(crop, region, weeks, quantity_kg, price_cny_per_kg, platform="pdd"):
    return pd.DataFrame(
        [
            {
                "platform": platform,
                "crop": crop,
                "region": region,
                "week": week,
                "quantity_kg": quantity_kg,
                "orders": quantity_kg / 2.5,
                "price_cny_per_kg": price_cny_per_kg,
            }
            for week in weeks
        ],
        columns=list(NO_SALES.columns),
    )


def _one(economics: list[CropEconomics], crop: str, region: str) -> CropEconomics:
    (found,) = [e for e in economics if e.crop == crop and e.region == region]
    return found


def _price_at(econ: CropEconomics, quantity_t: float) -> float:
    q, p = zip(*econ.price_curve, strict=True)
    return float(np.interp(quantity_t, q, p))


def _reference(econ: CropEconomics, elasticity: float = DEFAULT_PRICE_ELASTICITY) -> float:
    """The reference quantity of a linear curve: its zero-price end is reference × (1 - ε)."""
    return econ.price_curve[-1][0] / (1.0 - elasticity)


GARLIC_FIELDS = pd.DataFrame(
    [
        _field("zm-01", "f1", "zhongmou", "garlic", 1.0, 8.0, 10.0),
        _field("zm-01", "f2", "zhongmou", "garlic", 3.0, 12.0, 20.0),
        _field("zm-01", "f3", "zhongmou", "maize", 0.5, 6.0, 8.0),
        _field("zm-02", "f1", "zhongmou", "garlic", 1.5, 10.0, 15.0),
    ]
)


# --- current plan --------------------------------------------------------------------------


def test_current_plan_sums_a_farms_fields_per_crop():
    plan = current_plan(GARLIC_FIELDS)
    assert list(plan.columns) == ["farm", "region", "crop", "area_ha"]
    by_key = plan.set_index(["farm", "crop"])["area_ha"]
    assert by_key[("zm-01", "garlic")] == pytest.approx(4.0)
    assert by_key[("zm-01", "maize")] == pytest.approx(0.5)
    assert by_key[("zm-02", "garlic")] == pytest.approx(1.5)
    assert len(plan) == 3


def test_current_plan_names_a_missing_column():
    with pytest.raises(ValueError, match="area_ha"):
        current_plan(GARLIC_FIELDS.drop(columns="area_ha"))


# --- yields and cost -----------------------------------------------------------------------


def test_yields_are_weighted_by_field_area():
    garlic = _one(crop_economics(GARLIC_FIELDS, NO_DEMAND, NO_SALES, CROPS), "garlic", "zhongmou")
    # (1·10 + 3·20 + 1.5·15) / 5.5; an unweighted mean would say 15.
    assert garlic.yield_t_ha_p50 == pytest.approx(92.5 / 5.5)
    assert garlic.yield_t_ha_p10 == pytest.approx((8.0 + 36.0 + 15.0) / 5.5)


def test_a_p10_above_the_p50_is_capped_at_the_p50():
    crossed = pd.DataFrame([_field("a", "f1", "r", "potato", 2.0, 31.0, 30.0)])
    potato = crop_economics(crossed, NO_DEMAND, NO_SALES, CROPS)[0]
    assert potato.yield_t_ha_p10 == potato.yield_t_ha_p50 == pytest.approx(30.0)


def test_the_cost_is_the_catalogs_production_cost():
    economics = crop_economics(GARLIC_FIELDS, NO_DEMAND, NO_SALES, CROPS)
    assert [(e.crop, e.cost_cny_per_ha) for e in economics] == [
        ("garlic", CROPS["garlic"].production_cost_cny_per_ha),
        ("maize", CROPS["maize"].production_cost_cny_per_ha),
    ]
    assert all(e.region == "zhongmou" for e in economics)


# --- price ---------------------------------------------------------------------------------


def test_the_price_is_the_quantity_weighted_mean_of_the_last_52_weeks():
    recent = _weeks(60)
    sales = pd.concat(
        [
            # Too old: a year and more before the last week observed.
            _sales("garlic", "zhongmou", recent[:8], 50_000.0, 20.0),
            _sales("garlic", "zhongmou", recent[8:], 1_000.0, 4.0),
            _sales("garlic", "zhongmou", recent[8:], 3_000.0, 6.0, platform="meituan"),
            # Another region's garlic says nothing about Zhongmou's.
            _sales("garlic", "jinxiang", recent, 9_000.0, 1.0),
        ]
    )
    garlic = _one(crop_economics(GARLIC_FIELDS, NO_DEMAND, sales, CROPS), "garlic", "zhongmou")
    assert _price_at(garlic, _reference(garlic, PRICE_TAKER_ELASTICITY)) == pytest.approx(
        (4_000.0 + 18_000.0) / 4_000.0
    )


def test_the_window_counts_back_from_the_last_week_observed():
    weeks = _weeks(53)
    sales = pd.concat(
        [
            _sales("garlic", "zhongmou", weeks[:1], 1_000.0, 100.0),  # week 1 of 53: out
            _sales("garlic", "zhongmou", weeks[1:], 1_000.0, 5.0),
        ]
    )
    garlic = _one(crop_economics(GARLIC_FIELDS, NO_DEMAND, sales, CROPS), "garlic", "zhongmou")
    assert _price_at(garlic, _reference(garlic, PRICE_TAKER_ELASTICITY)) == pytest.approx(5.0)


def test_without_recent_priced_sales_the_price_is_the_catalogs():
    sales = pd.concat(
        [
            _sales("garlic", "jinxiang", _weeks(10), 5_000.0, 3.0),
            _sales("garlic", "zhongmou", _weeks(10), 0.0, 9.0),  # listed, nothing sold
            _sales("garlic", "zhongmou", _weeks(10), 5_000.0, float("nan")),  # unpriced
        ]
    )
    garlic = _one(crop_economics(GARLIC_FIELDS, NO_DEMAND, sales, CROPS), "garlic", "zhongmou")
    assert _price_at(garlic, _reference(garlic, PRICE_TAKER_ELASTICITY)) == pytest.approx(
        CROPS["garlic"].reference_price_cny_per_kg
    )


# --- reference quantity --------------------------------------------------------------------


def test_the_reference_quantity_is_a_years_demand_summed_over_platforms():
    weeks = _weeks(4)
    demand = pd.concat(
        [
            _demand("garlic", "zhongmou", weeks, {"pdd": 7_000.0}),
            # Meituan only in the first two weeks: weekly totals 10, 10, 7, 7 t.
            _demand("garlic", "zhongmou", weeks[:2], {"meituan": 3_000.0}),
            _demand("garlic", "jinxiang", weeks, {"pdd": 1_000_000.0}),
        ]
    )
    garlic = _one(crop_economics(GARLIC_FIELDS, demand, NO_SALES, CROPS), "garlic", "zhongmou")
    expected_t = 8_500.0 * WEEKS_PER_YEAR / 1000.0
    assert _reference(garlic) == pytest.approx(expected_t)
    # Elasticity -1: the price halves from the reference to zero at twice its quantity.
    assert garlic.price_curve[-1] == pytest.approx((2.0 * expected_t, 0.0))


def test_without_a_demand_forecast_the_market_takes_todays_production():
    demand = _demand("garlic", "zhongmou", _weeks(4), {"pdd": 7_000.0})  # garlic only
    maize = _one(crop_economics(GARLIC_FIELDS, demand, NO_SALES, CROPS), "maize", "zhongmou")
    assert _reference(maize, PRICE_TAKER_ELASTICITY) == pytest.approx(0.5 * 8.0)
    assert _price_at(maize, 0.5 * 8.0) == pytest.approx(CROPS["maize"].reference_price_cny_per_kg)
    # A price taker: a tenth more maize lowers its price by about a hundredth.
    drop = 1.0 - _price_at(maize, 0.55 * 8.0) / _price_at(maize, 0.5 * 8.0)
    assert drop == pytest.approx(0.01)
    garlic = _one(crop_economics(GARLIC_FIELDS, demand, NO_SALES, CROPS), "garlic", "zhongmou")
    assert _reference(garlic, DEFAULT_PRICE_ELASTICITY) == pytest.approx(
        7_000.0 * WEEKS_PER_YEAR / 1000.0
    )


def test_a_per_crop_elasticity_overrides_the_default():
    economics = crop_economics(
        GARLIC_FIELDS, NO_DEMAND, NO_SALES, CROPS, elasticity_by_crop={"maize": -8.0}
    )
    maize, garlic = _one(economics, "maize", "zhongmou"), _one(economics, "garlic", "zhongmou")
    assert maize.price_curve[-1][0] == pytest.approx(4.0 * 9.0)  # reference × (1 + 8)
    # No demand forecast: garlic is priced as a taker, reference × (1 + 10).
    assert garlic.price_curve[-1][0] == pytest.approx(11.0 * 92.5)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ((GARLIC_FIELDS.drop(columns="yield_t_ha_p10"), NO_DEMAND, NO_SALES), "yield_t_ha_p10"),
        ((GARLIC_FIELDS, NO_DEMAND.drop(columns="demand_kg_p50"), NO_SALES), "demand_kg_p50"),
        ((GARLIC_FIELDS, NO_DEMAND, NO_SALES.drop(columns="price_cny_per_kg")), "observed"),
    ],
)
def test_a_missing_column_is_named(frames, message):
    with pytest.raises(ValueError, match=message):
        crop_economics(*frames, CROPS)


def test_a_crop_not_in_the_catalog_is_named():
    fields = pd.DataFrame([_field("a", "f1", "r", "durian", 1.0, 5.0, 8.0)])
    with pytest.raises(ValueError, match="durian"):
        crop_economics(fields, NO_DEMAND, NO_SALES, CROPS)


def test_a_non_negative_elasticity_is_refused():
    with pytest.raises(ValueError, match="tomato"):
        crop_economics(
            GARLIC_FIELDS, NO_DEMAND, NO_SALES, CROPS, elasticity_by_crop={"tomato": 0.5}
        )


@pytest.mark.parametrize(
    ("area_ha", "p50", "message"),
    [(1.0, 0.0, "P50"), (-1.0, 8.0, "area_ha"), (0.0, 8.0, "no area")],
)
def test_fields_that_cannot_give_a_yield_are_refused(area_ha, p50, message):
    fields = pd.DataFrame([_field("a", "f1", "r", "maize", area_ha, 0.0, p50)])
    with pytest.raises(ValueError, match=message):
        crop_economics(fields, NO_DEMAND, NO_SALES, CROPS)


# --- through the planting optimiser ----------------------------------------------------------


def _region_fields(region: str, n_farms: int, crops: dict[str, tuple[float, float, float]]):
    """``n_farms`` farms growing each crop on one field: (area_ha, P10, P50)."""
    return pd.DataFrame(
        [
            _field(f"{region}-{k:03d}", f"f{j}", region, crop, area, p10, p50)
            for k in range(n_farms)
            for j, (crop, (area, p10, p50)) in enumerate(crops.items())
        ]
    )


def _regional(plan, crop: str) -> pd.Series:
    return plan.regions.set_index("crop").loc[crop]


def test_garlic_whose_demand_falls_to_a_third_of_last_years_sales_goes_down():
    # 100 Zhongmou-like farms of 3 ha: 2.1 ha garlic, 0.9 ha maize. 210 ha × 16 t = 3,360 t
    # of garlic sold at 6 CNY/kg; the platforms are forecast to take a third of it.
    fields = _region_fields(
        "zhongmou", 100, {"garlic": (2.1, 12.0, 16.0), "maize": (0.9, 6.0, 8.0)}
    )
    garlic_t = 210.0 * 16.0
    sold_kg = garlic_t * 1000.0 / WEEKS_PER_YEAR
    weeks = _weeks(52)
    demand = _demand(
        "garlic", "zhongmou", weeks, {"pdd": 0.7 * sold_kg / 3, "meituan": 0.3 * sold_kg / 3}
    )
    sales = _sales("garlic", "zhongmou", weeks, sold_kg, 6.0)
    economics = crop_economics(fields, demand, sales, CROPS)

    plan = recommend_planting(
        current_plan(fields), economics, PlantingConstraints(max_change_share=0.2)
    )
    garlic = _regional(plan, "garlic")
    # Grown at three times what the platforms take, demand is inelastic at today's
    # production (held at -0.5): every hectare less saves its cost and raises the revenue,
    # so each farm cuts the full change limit, 0.2 × 3 ha.
    assert garlic["recommended_ha"] == pytest.approx(garlic["current_ha"] - 100 * 0.6, rel=1e-6)
    assert garlic["expected_price_cny_per_kg_after"] > garlic["expected_price_cny_per_kg_before"]
    assert garlic["observed_price_cny_per_kg"] == pytest.approx(6.0)
    rows = plan.farms[plan.farms["crop"] == "garlic"]
    assert all("max_change_down" in b for b in rows["binding"])
    assert plan.summary["expected_margin_cny_after"] > plan.summary["expected_margin_cny_before"]


def test_snow_lotus_fruit_whose_demand_triples_goes_up():
    # 100 Mengzi-like farms of 3 ha: 1.2 ha snow lotus fruit (yacon), 1.2 ha maize, 0.6 ha
    # tomato. 120 ha × 35 t = 4,200 t sold at 4.5 CNY/kg; the platforms are forecast to
    # take three times as much.
    fields = _region_fields(
        "mengzi",
        100,
        {
            "snow_lotus_fruit": (1.2, 25.0, 35.0),
            "maize": (1.2, 5.0, 7.0),
            "tomato": (0.6, 40.0, 55.0),
        },
    )
    sold_kg = 120.0 * 35.0 * 1000.0 / WEEKS_PER_YEAR
    weeks = _weeks(52)
    demand = _demand("snow_lotus_fruit", "mengzi", weeks, {"pdd": 3.0 * sold_kg})
    sales = _sales("snow_lotus_fruit", "mengzi", weeks, sold_kg, 4.5)
    economics = crop_economics(fields, demand, sales, CROPS)

    plan = recommend_planting(
        current_plan(fields), economics, PlantingConstraints(max_change_share=0.2)
    )
    lotus = _regional(plan, "snow_lotus_fruit")
    # At a third of the demand, demand is elastic (-5 at today's production, which fetches
    # the observed 4.5 CNY/kg): marginal revenue ~3.6 CNY/kg × 35 t/ha against a cost of
    # ~37,500 CNY/ha: it grows until they meet, by over a quarter of its area.
    assert lotus["recommended_ha"] > 1.25 * lotus["current_ha"]
    assert lotus["expected_price_cny_per_kg_after"] < lotus["expected_price_cny_per_kg_before"]
    rows = plan.farms[plan.farms["crop"] == "snow_lotus_fruit"]
    assert any(r[0].startswith("more snow_lotus_fruit") for r in rows["reasons"])
    assert not any(r[0].startswith("less") for r in rows["reasons"])


# --- anchored on observed prices -------------------------------------------------------------


def test_todays_production_fetches_the_observed_price_when_demand_holds():
    fields = _region_fields("zhongmou", 10, {"garlic": (2.0, 12.0, 16.0)})
    production_t = 20.0 * 16.0
    sold_kg = production_t * 1000.0 / WEEKS_PER_YEAR
    weeks = _weeks(52)
    sales = pd.concat(
        [
            _sales("garlic", "zhongmou", weeks, 0.6 * sold_kg, 5.0, platform="pdd"),
            _sales("garlic", "zhongmou", weeks, 0.4 * sold_kg, 6.0, platform="meituan"),
        ]
    )
    same = _demand("garlic", "zhongmou", _weeks(26, MONDAY + timedelta(weeks=52)), {"pdd": sold_kg})
    garlic = _one(crop_economics(fields, same, sales, CROPS), "garlic", "zhongmou")
    assert garlic.observed_price_cny_per_kg == pytest.approx(5.4)
    assert _price_at(garlic, production_t) == pytest.approx(5.4)
    # Demand forecast at 1.2 times today's production: the curve still gives today's
    # production the observed price, more elastic there (-1.4), and zero at twice the demand.
    more = _demand(
        "garlic", "zhongmou", _weeks(26, MONDAY + timedelta(weeks=52)), {"pdd": 1.2 * sold_kg}
    )
    garlic = _one(crop_economics(fields, more, sales, CROPS), "garlic", "zhongmou")
    assert _price_at(garlic, production_t) == pytest.approx(5.4)
    assert garlic.price_curve[-1][0] == pytest.approx(2.0 * 1.2 * production_t)
    plan = recommend_planting(current_plan(fields), [garlic])
    regional = _regional(plan, "garlic")
    assert regional["observed_price_cny_per_kg"] == pytest.approx(5.4)
    # The model's price of today's plan, over the yield scenarios: the observed one.
    assert regional["expected_price_cny_per_kg_before"] == pytest.approx(5.4, rel=0.05)


def test_a_crop_without_sales_shows_no_observed_price():
    maize = _one(crop_economics(GARLIC_FIELDS, NO_DEMAND, NO_SALES, CROPS), "maize", "zhongmou")
    assert maize.observed_price_cny_per_kg is None
    plan = recommend_planting(current_plan(GARLIC_FIELDS), [maize])
    assert np.isnan(_regional(plan, "maize")["observed_price_cny_per_kg"])


def test_orchards_carry_the_catalogs_costs_of_change():
    fields = pd.DataFrame(
        [
            _field("yc-01", "f1", "yanchuan", "jujube", 2.0, 3.0, 4.0),
            _field("yc-01", "f2", "yanchuan", "maize", 1.0, 5.0, 7.0),
        ]
    )
    economics = crop_economics(fields, NO_DEMAND, NO_SALES, CROPS)
    jujube, maize = _one(economics, "jujube", "yanchuan"), _one(economics, "maize", "yanchuan")
    orchard = CROPS["jujube"].orchard
    assert orchard is not None and orchard.years_to_bearing >= 1
    assert jujube.perennial and jujube.years_to_bearing == orchard.years_to_bearing
    assert jujube.establishment_cost_cny_per_ha == orchard.establishment_cost_cny_per_ha
    assert jujube.removal_cost_cny_per_ha == orchard.removal_cost_cny_per_ha
    assert not maize.perennial and maize.removal_cost_cny_per_ha == 0.0
    for key, source in orchard.sources.items():
        assert source.startswith(("estimate:", "NDRC")), key


# --- the whole rotation, whatever the date -------------------------------------------------


def _rotation(maize_year: int, maize_p50: float, garlic_year: int) -> pd.DataFrame:
    """Ten Zhongmou farms: a 3 ha garlic field and a 2 ha maize field each."""
    rows = []
    for k in range(10):
        garlic = _field(f"zm-{k}", "f1", "zhongmou", "garlic", 3.0, 12.0, 16.0)
        maize = _field(f"zm-{k}", "f2", "zhongmou", "maize", 2.0, 6.0, maize_p50)
        rows += [{**garlic, "year": garlic_year}, {**maize, "year": maize_year}]
    return pd.DataFrame(rows)


def _surge_plan(fields: pd.DataFrame):
    """Garlic demand forecast at twice what sold; the LP's plan for ``fields``."""
    sold_kg = 30.0 * 16.0 * 1000.0 / WEEKS_PER_YEAR
    weeks = _weeks(52)
    sales = _sales("garlic", "zhongmou", weeks, sold_kg, 6.0)
    demand = _demand("garlic", "zhongmou", _weeks(26, weeks[-1]), {"pdd": 2.0 * sold_kg})
    economics = crop_economics(fields, demand, sales, CROPS)
    return recommend_planting(current_plan(fields), economics)


def test_next_seasons_plan_covers_the_rotation_before_and_after_the_maize_harvest():
    # August: the maize of 2024 is in the ground (its forecast P50 8 t/ha), the garlic of
    # 2025 not sown yet. November: the maize is in; the chain forecasts its next season
    # (2025, from the crop's past yields: 8 t/ha), the garlic of 2025 is sown.
    before = _surge_plan(_rotation(2024, 8.0, 2025))
    after = _surge_plan(_rotation(2025, 8.0, 2025))
    areas = ["farm", "crop", "current_ha", "recommended_ha"]
    pd.testing.assert_frame_equal(before.farms[areas], after.farms[areas], atol=1e-6)
    garlic = _regional(before, "garlic")
    assert garlic["recommended_ha"] > 1.1 * garlic["current_ha"]  # the surge takes maize land
    # What the plan did when harvested crops dropped out: garlic had no land to take.
    garlic_only = _rotation(2025, 8.0, 2025).query("crop == 'garlic'")
    alone = _regional(_surge_plan(garlic_only), "garlic")
    assert alone["recommended_ha"] == pytest.approx(alone["current_ha"])


def test_a_field_forecast_for_two_seasons_counts_its_land_once():
    fields = _rotation(2024, 8.0, 2025)
    twice = pd.concat([fields, fields.query("crop == 'maize'").assign(year=2025)])
    pd.testing.assert_frame_equal(current_plan(twice), current_plan(fields))
    assert crop_economics(twice, NO_DEMAND, NO_SALES, CROPS) == crop_economics(
        fields, NO_DEMAND, NO_SALES, CROPS
    )
