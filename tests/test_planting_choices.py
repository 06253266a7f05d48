"""Planting plans a farmer would accept: a change must be worth its cost, orchards are not
annual choices, and idle land is a stated choice (forecasting.planting, issue 12 §4)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from agrimatch.agronomy import CROPS
from forecasting.chain_data import seasons_to_forecast
from forecasting.economics import crop_economics, current_plan
from forecasting.planting import (
    DEFAULT_LAND_RENT_CNY_PER_HA,
    CropEconomics,
    PlantingConstraints,
    recommend_planting,
)

COST = 15_000.0  # CNY/ha, both crops: the switching cost is then 1,500 CNY/ha by default


def _flat(crop: str, margin_cny_per_ha: float, **orchard: float) -> CropEconomics:
    """A price taker yielding a certain 10 t/ha at the price that gives ``margin``."""
    price = (COST + margin_cny_per_ha) / 10_000.0
    return CropEconomics(
        crop,
        "r",
        yield_t_ha_p10=10.0,
        yield_t_ha_p50=10.0,
        cost_cny_per_ha=COST,
        price_curve=((0.0, price), (1e6, price)),
        **orchard,  # type: ignore[arg-type]
    )


def _farms(n: int, areas: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"farm": f"f{k}", "region": "r", "crop": crop, "area_ha": area}
            for k in range(n)
            for crop, area in areas.items()
        ]
    )


def _rows(plan, crop: str) -> pd.DataFrame:
    return plan.farms[plan.farms["crop"] == crop]


def _area(plan, crop: str) -> float:
    return float(_rows(plan, crop)["recommended_ha"].sum())


# --- indifferent changes ------------------------------------------------------------------


def test_a_gain_below_the_switching_cost_keeps_the_plan_and_says_so():
    current = _farms(3, {"garlic": 5.0, "tomato": 5.0})
    # Tomato earns 50 CNY/ha a season more than garlic: next to nothing.
    economics = [_flat("garlic", 5_000.0), _flat("tomato", 5_050.0)]
    free = recommend_planting(current, economics, PlantingConstraints(switching_cost_share=0.0))
    assert _area(free, "tomato") == pytest.approx(15.0 + 3 * 0.2 * 10.0)  # moves all it may

    plan = recommend_planting(current, economics)
    assert _area(plan, "tomato") == pytest.approx(15.0)
    assert _area(plan, "garlic") == pytest.approx(15.0)
    for reasons in _rows(plan, "tomato")["reasons"]:
        assert (
            "kept: the gain of 50 CNY/ha from a hectare more of tomato (instead of garlic) is "
            "below the switching cost of 1,500 CNY/ha" in reasons
        )
    for reasons in _rows(plan, "garlic")["reasons"]:
        assert (
            "kept: the gain of 50 CNY/ha from moving a hectare of garlic to tomato is below "
            "the switching cost of 1,500 CNY/ha" in reasons
        )
    assert all("switching_cost" in b for b in plan.farms["binding"])
    assert plan.summary["switching_cost_cny"] == pytest.approx(0.0)


def test_a_gain_above_the_switching_cost_moves_the_area_and_pays_it():
    current = _farms(3, {"garlic": 5.0, "tomato": 5.0})
    economics = [_flat("garlic", 5_000.0), _flat("tomato", 9_000.0)]
    plan = recommend_planting(current, economics)
    assert _area(plan, "tomato") == pytest.approx(15.0 + 3 * 2.0)
    assert all(
        "each hectare added pays a switching cost of 1,500 CNY/ha once; the gain covers it" in r
        for r in _rows(plan, "tomato")["reasons"]
    )
    assert plan.summary["switching_cost_cny"] == pytest.approx(6.0 * 1_500.0)


def test_a_switching_cost_named_per_crop_overrides_the_share():
    current = _farms(1, {"garlic": 5.0, "tomato": 5.0})
    economics = [_flat("garlic", 5_000.0), _flat("tomato", 5_050.0)]
    cons = PlantingConstraints(switching_cost_cny_per_ha={"tomato": 10.0})
    assert _area(recommend_planting(current, economics, cons), "tomato") == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"switching_cost_share": -0.1}, "switching_cost_share"),
        ({"switching_cost_cny_per_ha": {"tomato": -5.0}}, "switching_cost_cny_per_ha"),
        ({"land_rent_cny_per_ha": -1.0}, "land_rent_cny_per_ha"),
        ({"perennial_horizon_years": 0}, "perennial_horizon_years"),
        ({"discount_rate": 1.5}, "discount_rate"),
        ({"max_perennial_change_share": 2.0}, "max_perennial_change_share"),
    ],
)
def test_a_bad_cost_of_change_is_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PlantingConstraints(**kwargs)


# --- orchards -------------------------------------------------------------------------------

PEAR = {
    "perennial": True,
    "establishment_cost_cny_per_ha": 45_000.0,
    "removal_cost_cny_per_ha": 7_500.0,
    "years_to_bearing": 4,
}


def test_an_orchard_is_kept_when_the_discounted_loss_avoided_is_below_its_removal_cost():
    current = _farms(2, {"fragrant_pear": 8.0, "maize": 2.0})
    # Maize after its switching cost (7,500 - 1,500) earns 1,000 CNY/ha a season more than
    # pear: over 5 seasons at 6 % that is ~4,470 CNY/ha, below the 7,500 it costs to grub.
    economics = [_flat("fragrant_pear", 5_000.0, **PEAR), _flat("maize", 7_500.0)]
    annual = [_flat("fragrant_pear", 5_000.0), _flat("maize", 7_500.0)]
    assert _area(recommend_planting(current, annual), "fragrant_pear") < 16.0 - 1.0

    plan = recommend_planting(current, economics)
    assert _area(plan, "fragrant_pear") == pytest.approx(16.0)
    for reasons, binding in zip(
        _rows(plan, "fragrant_pear")["reasons"],
        _rows(plan, "fragrant_pear")["binding"],
        strict=True,
    ):
        assert "removal_cost" in binding
        assert any(
            r.startswith("kept: grubbing a hectare of fragrant_pear for maize would gain 1,000")
            and "over 5 seasons at 6%" in r
            and "less than the removal cost of 7,500 CNY/ha" in r
            for r in reasons
        ), reasons


def test_an_orchard_is_grubbed_when_the_loss_it_avoids_covers_the_removal_cost():
    current = _farms(2, {"fragrant_pear": 8.0, "maize": 2.0})
    economics = [_flat("fragrant_pear", -3_000.0, **PEAR), _flat("maize", 7_500.0)]
    plan = recommend_planting(current, economics)
    # By at most 5 % of the farm's land a season (orchards are renewed, not replanted).
    assert _area(plan, "fragrant_pear") == pytest.approx(16.0 - 2 * 0.05 * 10.0)
    assert all(
        any(r.startswith("grubbed: a hectare of fragrant_pear given to maize") for r in reasons)
        for reasons in _rows(plan, "fragrant_pear")["reasons"]
    )
    assert plan.summary["removal_cost_cny"] == pytest.approx(1.0 * 7_500.0)
    assert all(
        any("may shrink by at most 5% of the farm's land a season" in r for r in reasons)
        for reasons in _rows(plan, "fragrant_pear")["reasons"]
    )
    wider = PlantingConstraints(max_perennial_change_share=0.2)
    assert _area(recommend_planting(current, economics, wider), "fragrant_pear") == (
        pytest.approx(16.0 - 2 * 0.2 * 10.0)
    )


def test_a_new_orchard_bears_nothing_next_season_so_a_high_price_does_not_plant_one():
    current = _farms(2, {"fragrant_pear": 5.0, "maize": 5.0})
    economics = [_flat("fragrant_pear", 30_000.0, **PEAR), _flat("maize", 2_000.0)]
    annual = [_flat("fragrant_pear", 30_000.0), _flat("maize", 2_000.0)]
    assert _area(recommend_planting(current, annual), "fragrant_pear") > 10.0 + 1.0

    plan = recommend_planting(current, economics)
    assert _area(plan, "fragrant_pear") == pytest.approx(10.0)
    assert all(
        "kept: a new hectare of fragrant_pear would bear nothing for 4 seasons and cost "
        "45,000 CNY/ha to plant" in reasons
        for reasons in _rows(plan, "fragrant_pear")["reasons"]
    )


# --- idle land ------------------------------------------------------------------------------


def test_land_goes_idle_when_every_crop_loses_more_than_the_rent_and_the_plan_says_why():
    rent = DEFAULT_LAND_RENT_CNY_PER_HA
    current = _farms(2, {"garlic": 6.0, "tomato": 4.0})
    economics = [_flat("garlic", -3 * rent), _flat("tomato", -2 * rent)]
    plan = recommend_planting(current, economics)
    assert plan.summary["idle_ha_before"] == pytest.approx(0.0)
    assert plan.summary["idle_ha_after"] == pytest.approx(2 * 4.0)  # both cut by the limit
    assert plan.farms["farm_idle_ha_after"].tolist() == pytest.approx([4.0] * 4)
    for reasons, binding in zip(plan.farms["reasons"], plan.farms["binding"], strict=True):
        assert "idle" in binding
        assert (
            "4.00 ha of the farm left idle: no crop's last hectare here covers its cost but "
            "the 3,600 CNY/ha rent idle land still pays (best: tomato, -7,200 CNY/ha net of its "
            "cost)" in reasons
        )
    kept = recommend_planting(current, economics, PlantingConstraints(keep_land_planted=True))
    assert kept.summary["idle_ha_after"] == pytest.approx(0.0)


def test_land_left_idle_for_want_of_a_crop_worth_switching_to_says_so():
    rent = DEFAULT_LAND_RENT_CNY_PER_HA
    current = _farms(2, {"garlic": 6.0, "tomato": 4.0})
    # Garlic loses 3x the rent; tomato loses less than the rent, so it stays, but moving
    # garlic's land to it gains 360 CNY/ha over idling, below its switching cost.
    economics = [_flat("garlic", -3 * rent), _flat("tomato", -0.9 * rent)]
    plan = recommend_planting(current, economics)
    assert _area(plan, "tomato") == pytest.approx(8.0)
    assert _area(plan, "garlic") == pytest.approx(12.0 - 2 * 2.0)
    assert plan.summary["idle_ha_after"] == pytest.approx(4.0)
    for reasons in plan.farms["reasons"]:
        assert (
            "2.00 ha of the farm left idle: planting it with tomato would gain 360 CNY/ha over "
            "the 3,600 CNY/ha rent idle land still pays (tomato nets -3,240 CNY/ha on its "
            "cost), below its switching cost of 1,500 CNY/ha" in reasons
        )
    kept = recommend_planting(current, economics, PlantingConstraints(keep_land_planted=True))
    assert kept.summary["idle_ha_after"] == pytest.approx(0.0)
    assert _area(kept, "tomato") == pytest.approx(12.0)  # the least bad crop takes the land


def test_a_crop_losing_less_than_the_rent_keeps_its_land():
    current = _farms(2, {"garlic": 6.0, "tomato": 4.0})
    economics = [_flat("garlic", -2_000.0), _flat("tomato", -1_000.0)]
    plan = recommend_planting(current, economics)
    assert plan.summary["idle_ha_after"] == pytest.approx(0.0)
    assert not any("idle" in b for b in plan.farms["binding"])


# --- the whole rotation, whatever the date ----------------------------------------------------


def _registry(n_farms: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(seasons, plans): garlic (sown 5 October) and maize (10 June) fields, the seasons of
    2023 and 2024 recorded with their truth; nothing recorded for 2025."""
    seasons, plans = [], []
    for k in range(n_farms):
        for field, crop, area, sown in (
            ("f1", "garlic", 3.0, "10-05"),
            ("f2", "maize", 2.0, "06-10"),
        ):
            plans.append(
                {"farm": f"zm-{k}", "field": field, "region": "zhongmou", "crop": crop,
                 "soil": "loam", "area_ha": area, "planting_month_day": sown}
            )  # fmt: skip
            for year in (2023, 2024):
                planted = date(year - 1, 10, 5) if crop == "garlic" else date(year, 6, 10)
                end = date(year, 5, 30) if crop == "garlic" else date(year, 10, 10)
                seasons.append(
                    {"farm": f"zm-{k}", "field": field, "region": "zhongmou", "crop": crop,
                     "soil": "loam", "area_ha": area, "year": year, "planted_on": planted,
                     "yield_t_ha": 8.0, "harvest_start": end, "harvest_peak": end,
                     "harvest_end": end}
                )  # fmt: skip
    return pd.DataFrame(seasons), pd.DataFrame(plans)


def test_the_plan_covers_the_rotation_and_is_the_same_before_and_after_the_maize_harvest():
    seasons, plans = _registry(10)
    # Garlic demand forecast at twice what the platforms sold: garlic should take land.
    weeks = pd.date_range("2023-09-04", periods=52, freq="7D").date
    sold_kg = 30.0 * 16.0 * 1000.0 / 52.18
    sales = pd.DataFrame(
        {"platform": "pdd", "crop": "garlic", "region": "zhongmou", "week": weeks,
         "quantity_kg": sold_kg, "orders": 1.0, "price_cny_per_kg": 6.0}
    )  # fmt: skip
    demand = sales.assign(demand_kg_p50=2.0 * sold_kg)[["platform", "crop", "region", "week",
                                                       "demand_kg_p50"]]  # fmt: skip
    plans_by_date = {}
    for as_of in (date(2024, 9, 15), date(2024, 11, 15)):  # before and after the maize harvest
        fields = seasons_to_forecast(seasons, plans, as_of)
        assert set(fields["crop"]) == {"garlic", "maize"}, as_of
        # The same yields either way (what the chain's models would say is not the point).
        fields = fields.assign(
            yield_t_ha_p10=fields["crop"].map({"garlic": 12.0, "maize": 6.0}),
            yield_t_ha_p50=fields["crop"].map({"garlic": 16.0, "maize": 8.0}),
        )
        economics = crop_economics(fields, demand, sales, CROPS)
        plans_by_date[as_of] = recommend_planting(current_plan(fields), economics)
    before, after = plans_by_date.values()
    areas = ["farm", "crop", "current_ha", "recommended_ha"]
    pd.testing.assert_frame_equal(before.farms[areas], after.farms[areas], atol=1e-6)
    garlic = before.regions.set_index("crop").loc["garlic"]
    assert garlic["current_ha"] == pytest.approx(30.0)
    assert garlic["recommended_ha"] > 1.1 * garlic["current_ha"]  # it takes maize land
