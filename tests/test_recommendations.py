"""Balance, campaign timing, planting and what-if: the recommendations of issue Order 3."""

from __future__ import annotations

import itertools
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from agrimatch.agronomy import CROPS
from agrimatch.scenario import Platform
from forecasting.balance import balance, carry_stock
from forecasting.campaign_uplift import UpliftPrior, estimate_uplifts
from forecasting.campaigns import (
    CampaignSettings,
    festival_calendar,
    recommend_campaigns,
    replay,
)
from forecasting.frames import BALANCE_COLUMNS
from forecasting.planting import (
    CropEconomics,
    PlantingConstraints,
    RotationRule,
    linear_price_curve,
    recommend_planting,
)
from forecasting.recommend import Market, PlantingSettings
from forecasting.whatif import (
    PlanChange,
    apply_plan_change,
    surplus_summary,
    what_if,
)

MONDAY = date(2024, 3, 4)
PDD = Platform(id="pdd", name="Pinduoduo", campaign_lead_days=10)
MEITUAN = Platform(id="meituan", name="Meituan Youxuan", campaign_lead_days=14)


def _weeks(n: int, first: date = MONDAY) -> list[date]:
    return [first + timedelta(weeks=k) for k in range(n)]


def _supply(crop: str, region: str, weekly_kg: dict[date, float], spread: float = 0.15):
    rows = [
        {
            "crop": crop,
            "region": region,
            "week": week,
            "supply_kg_p10": kg * (1 - spread),
            "supply_kg_p50": kg,
            "supply_kg_p90": kg * (1 + spread),
        }
        for week, kg in weekly_kg.items()
    ]
    return pd.DataFrame(rows)


def _demand(crop: str, region: str, weeks: list[date], per_day_kg: dict[str, float], spread=0.15):
    rows = [
        {
            "platform": platform,
            "crop": crop,
            "region": region,
            "week": week,
            "demand_kg_p10": kg * 7 * (1 - spread),
            "demand_kg_p50": kg * 7,
            "demand_kg_p90": kg * 7 * (1 + spread),
        }
        for week in weeks
        for platform, kg in per_day_kg.items()
    ]
    return pd.DataFrame(rows)


def _daily(weekly_kg: dict[date, float], first: date, last: date) -> pd.Series:
    days = pd.date_range(first, last)
    series = pd.Series(0.0, index=days)
    for week, kg in weekly_kg.items():
        series[pd.Timestamp(week) : pd.Timestamp(week + timedelta(days=6))] = kg / 7
    return series


# --- the garlic glut: Zhongmou-like, harvested late May, steady demand -------------------

GARLIC_WEEKS = _weeks(45)
GARLIC_SHARES = {11: 0.05, 12: 0.25, 13: 0.40, 14: 0.25, 15: 0.05}  # weeks of 20 May - 17 Jun
GARLIC_TOTAL_KG = 18_000_000.0
GARLIC_PEAK_WEEK = GARLIC_WEEKS[13]
GARLIC_DEMAND = {"pdd": 28_000.0, "meituan": 12_000.0}  # kg a day
AS_OF = date(2024, 4, 20)


def _garlic_harvest(total_kg: float = GARLIC_TOTAL_KG) -> dict[date, float]:
    return {GARLIC_WEEKS[k]: total_kg * share for k, share in GARLIC_SHARES.items()}


@pytest.fixture(scope="module")
def garlic() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    supply = _supply("garlic", "zhongmou", _garlic_harvest())
    demand = _demand("garlic", "zhongmou", GARLIC_WEEKS, GARLIC_DEMAND)
    return supply, demand, balance(supply, demand)


@pytest.fixture(scope="module")
def garlic_campaigns(garlic):
    _, demand, balanced = garlic
    return recommend_campaigns(
        balanced, [PDD, MEITUAN], estimate_uplifts([]), CROPS, AS_OF, demand=demand
    )


# --- balance -----------------------------------------------------------------------------


def test_carry_stock_sells_oldest_first_and_spoils_after_shelf_life():
    flows = carry_stock(np.array([10.0, 4.0, 0.0, 0.0]), np.array([2.0, 2.0, 2.0, 2.0]), 2)
    # Lot 1 (10 kg) sells 2 + 2 and spoils 6 at the end of week 2; lot 2 (4 kg, in week 2)
    # sells 2 in week 3 and spoils 2 at its end; week 4 finds the store empty.
    assert flows.sold_kg.tolist() == [2.0, 2.0, 2.0, 0.0]
    assert flows.spoiled_kg.tolist() == [0.0, 6.0, 2.0, 0.0]
    assert flows.stock_kg.tolist() == [8.0, 4.0, 0.0, 0.0]
    assert flows.unmet_kg.tolist() == [0.0, 0.0, 0.0, 2.0]


def test_surplus_is_likely_when_supply_p10_exceeds_demand_p90():
    week = [MONDAY]
    supply = _supply("potato", "r", {MONDAY: 130_000.0}, spread=0.1)  # P10 117 t
    demand = _demand("potato", "r", week, {"a": 8_000.0, "b": 6_000.0}, spread=0.1)  # P90 108 t
    row = balance(supply, demand).iloc[0]
    assert row["p_surplus"] > 0.9
    assert row["p_shortfall"] < 0.05
    assert row["surplus_kg_p50"] == pytest.approx(130_000 - 98_000, rel=0.05)


def test_shortfall_is_likely_when_supply_p90_is_below_demand_p10():
    supply = _supply("potato", "r", {MONDAY: 60_000.0}, spread=0.1)  # P90 66 t
    demand = _demand("potato", "r", [MONDAY], {"a": 8_000.0, "b": 6_000.0}, spread=0.1)  # P10 88 t
    row = balance(supply, demand).iloc[0]
    assert row["p_shortfall"] > 0.9
    assert row["p_surplus"] < 0.05
    assert row["surplus_kg_p50"] < 0


def test_balance_has_the_contract_columns_and_sums_demand_over_platforms(garlic):
    _, _, balanced = garlic
    assert tuple(balanced.columns) == BALANCE_COLUMNS
    assert len(balanced) == len(GARLIC_WEEKS)
    assert balanced["demand_kg_p50"].median() == pytest.approx(40_000 * 7, rel=0.02)
    # The total's band is narrower than the sum of the platforms' bands (not comonotone).
    width = (balanced["demand_kg_p90"] - balanced["demand_kg_p10"]).median()
    assert width < 2 * 0.15 * 40_000 * 7
    assert ((balanced["p_surplus"] + balanced["p_shortfall"]) <= 1.0 + 1e-12).all()


def test_stock_carried_within_shelf_life_covers_a_later_shortfall():
    weeks = _weeks(4)
    supply = _supply("potato", "r", {weeks[0]: 200_000.0, weeks[1]: 0.0}, spread=0.05)
    demand = _demand("potato", "r", weeks[:2], {"a": 10_000.0}, spread=0.05)
    carried = balance(supply, demand)
    flat = balance(supply, demand, carry_stock_over=False)
    assert carried.loc[1, "p_shortfall"] < 0.05  # week 2 is served from store
    assert flat.loc[1, "p_shortfall"] > 0.95
    assert carried.loc[1, "surplus_kg_p50"] == pytest.approx(200_000 - 140_000, rel=0.05)


def test_a_glut_persists_until_it_spoils(garlic):
    _, _, balanced = garlic
    shelf_end = GARLIC_WEEKS[15] + timedelta(days=CROPS["garlic"].shelf_life_days)
    during = balanced[
        (balanced["week"] > GARLIC_PEAK_WEEK) & (balanced["week"] < date(2024, 11, 1))
    ]
    assert (during["p_surplus"] > 0.95).all()
    after = balanced[balanced["week"] > shelf_end]
    assert (after["p_shortfall"] > 0.95).all()


# --- campaign uplift ---------------------------------------------------------------------


def test_uplift_without_history_is_the_stated_prior():
    estimate = estimate_uplifts([]).for_campaign("pdd", "garlic")
    assert estimate.uplift == pytest.approx(2.5)
    assert estimate.n_campaigns == 0
    assert "prior" in estimate.basis
    assert estimate.uplift_p10 < estimate.uplift < estimate.uplift_p90


def test_uplift_with_little_history_shrinks_toward_the_prior():
    one = estimate_uplifts([{"platform": "pdd", "crop": "garlic", "uplift": 6.0}])
    many = estimate_uplifts([{"platform": "pdd", "crop": "garlic", "uplift": 6.0}] * 30)
    little = one.for_campaign("pdd", "garlic").uplift
    # exp((3 ln 2.5 + ln 6) / 4): a quarter of the way from the prior in logs.
    assert little == pytest.approx(np.exp((3 * np.log(2.5) + np.log(6.0)) / 4))
    assert 2.5 < little < 4.0
    assert 5.0 < many.for_campaign("pdd", "garlic").uplift < 6.0


def test_uplift_prefers_achieved_volume_over_baseline_and_ignores_recommendations():
    history = pd.DataFrame(
        [
            {
                "platform_id": "pdd",
                "crop": "garlic",
                "uplift": 9.0,
                "volume_kg": 300.0,
                "baseline_kg": 100.0,
                "source": "history",
            },
            {
                "platform_id": "pdd",
                "crop": "garlic",
                "uplift": 50.0,
                "volume_kg": None,
                "baseline_kg": None,
                "source": "recommended",
            },
        ]
    )
    estimate = estimate_uplifts(history, UpliftPrior(pseudo_campaigns=1.0)).for_campaign(
        "pdd", "garlic"
    )
    assert estimate.n_campaigns == 1
    assert estimate.uplift == pytest.approx(np.sqrt(2.5 * 3.0))


def test_uplift_per_crop_when_a_platform_has_enough_history_of_it():
    history = [{"platform": "pdd", "crop": "pear", "uplift": 2.0}] * 4 + [
        {"platform": "pdd", "crop": "garlic", "uplift": 6.0}
    ] * 4
    table = estimate_uplifts(history, min_crop_campaigns=3)
    assert table.for_campaign("pdd", "garlic").uplift > table.for_campaign("pdd", "pear").uplift
    assert table.for_campaign("pdd", "jujube").crop is None  # falls back to the platform


# --- campaign timing ---------------------------------------------------------------------


def test_garlic_glut_gets_a_campaign_before_the_harvest_peak(garlic_campaigns):
    assert garlic_campaigns
    first = min(garlic_campaigns, key=lambda c: c.start)
    assert first.crop == "garlic"
    assert first.start < GARLIC_PEAK_WEEK
    assert first.start >= GARLIC_WEEKS[11]  # not before there is garlic to sell


def test_campaigns_respect_lead_time_and_shelf_life(garlic_campaigns):
    leads = {"pdd": PDD.campaign_lead_days, "meituan": MEITUAN.campaign_lead_days}
    last_harvest_week = GARLIC_WEEKS[15]
    spoils_by = last_harvest_week + timedelta(days=CROPS["garlic"].shelf_life_days)
    for campaign in garlic_campaigns:
        assert campaign.start >= AS_OF + timedelta(days=leads[campaign.platform])
        assert campaign.end < spoils_by
        assert campaign.end >= campaign.start
        assert 0 < campaign.expected_absorbed_kg <= campaign.target_kg


def test_campaigns_on_one_platform_do_not_overlap(garlic_campaigns):
    by_platform: dict[str, list] = {}
    for campaign in garlic_campaigns:
        by_platform.setdefault(campaign.platform, []).append(campaign)
    for campaigns in by_platform.values():
        ordered = sorted(campaigns, key=lambda c: c.start)
        for a, b in itertools.pairwise(ordered):
            assert b.start > a.end


def test_campaigns_give_reasons_naming_surplus_lead_time_shelf_life_and_uplift(garlic_campaigns):
    text = " ".join(garlic_campaigns[0].reasons)
    assert "would spoil" in text
    assert "days to organise" in text
    assert "before the last of the surplus spoils" in text
    assert "uplift 2.5×" in text and "prior" in text


def test_campaigns_are_ranked_by_value_at_risk(garlic):
    supply, demand, _ = garlic
    potato_harvest = {GARLIC_WEEKS[20]: 3_000_000.0}
    supply = pd.concat([supply, _supply("potato", "zhongmou", potato_harvest)])
    demand = pd.concat([demand, _demand("potato", "zhongmou", GARLIC_WEEKS, {"pdd": 5_000.0})])
    recs = recommend_campaigns(
        balance(supply, demand),
        [PDD, MEITUAN],
        estimate_uplifts([]),
        CROPS,
        AS_OF,
        demand=demand,
    )
    assert {r.crop for r in recs} == {"garlic", "potato"}
    values = [r.value_at_risk_cny for r in recs]
    assert values == sorted(values, reverse=True)
    assert recs[0].crop == "garlic"
    garlic_var = recs[0].value_at_risk_cny
    assert garlic_var == pytest.approx(recs[0].surplus_at_risk_kg * 6.0, rel=1e-6)


def test_no_surplus_means_no_campaign():
    weeks = _weeks(20)
    supply = _supply("potato", "r", {weeks[5]: 100_000.0})
    demand = _demand("potato", "r", weeks, {"pdd": 10_000.0})
    assert (
        recommend_campaigns(
            balance(supply, demand), [PDD], estimate_uplifts([]), CROPS, MONDAY, demand=demand
        )
        == []
    )


def test_no_campaign_when_the_surplus_spoils_before_one_can_be_organised():
    weeks = _weeks(8)
    supply = _supply("tomato", "r", {weeks[0]: 500_000.0})
    demand = _demand("tomato", "r", weeks, {"pdd": 2_000.0})
    late = weeks[0] + timedelta(days=10)  # + 10 days lead > 14 days shelf life
    recs = recommend_campaigns(
        balance(supply, demand), [PDD], estimate_uplifts([]), CROPS, late, demand=demand
    )
    assert recs == []


def test_among_equal_windows_a_festival_one_is_chosen():
    # A potato glut in July (120 days in store, spoiling in October), flat demand, no
    # storage cost and no hangover: every window clears the same kilograms, so without a
    # preference the earliest (mid-July) would win; Mid-Autumn (17 Sep 2024) is in reach.
    weeks = _weeks(26, date(2024, 7, 1))
    supply = _supply("potato", "r", {weeks[0]: 5_000_000.0})
    demand = _demand("potato", "r", weeks, {"pdd": 5_000.0})
    settings = CampaignSettings(storage_cost_cny_per_kg_week=0.0, max_campaigns_per_surplus=1)
    uplifts = estimate_uplifts([], UpliftPrior(hangover=0.0))
    recs = recommend_campaigns(
        balance(supply, demand), [PDD], uplifts, CROPS, weeks[0], demand=demand, settings=settings
    )
    assert len(recs) == 1
    assert any("overlaps Mid-Autumn 2024" in reason for reason in recs[0].reasons)
    assert recs[0].start > weeks[0] + timedelta(days=PDD.campaign_lead_days)


def test_festival_calendar_has_the_four_festivals():
    festivals = festival_calendar([2024])
    names = {f.name for f in festivals}
    assert len(names) == 4
    assert date(2024, 6, 18) in {f.day for f in festivals}
    assert all(f.buying_start <= f.day for f in festivals)


def test_replay_recommended_beats_naive_beats_none_for_the_garlic_glut(garlic_campaigns):
    supply = _daily(_garlic_harvest(), GARLIC_WEEKS[0], GARLIC_WEEKS[-1] + timedelta(days=6))
    demand = {p: pd.Series(kg, index=supply.index) for p, kg in GARLIC_DEMAND.items()}
    result = replay(supply, demand, garlic_campaigns, CROPS["garlic"].shelf_life_days, 0.01)
    assert result.none.surplus_cleared_share == 0.0
    assert result.recommended.sold_share >= result.naive.sold_share - 1e-9
    assert result.naive.sold_share > result.none.sold_share
    assert result.recommended.surplus_cleared_share > 0.3


def test_no_choice_of_windows_clears_more_than_the_ceiling(garlic_campaigns):
    supply = _daily(_garlic_harvest(), GARLIC_WEEKS[0], GARLIC_WEEKS[-1] + timedelta(days=6))
    demand = {p: pd.Series(kg, index=supply.index) for p, kg in GARLIC_DEMAND.items()}
    uplifts = {c.platform: c.uplift for c in garlic_campaigns}
    shelf = CROPS["garlic"].shelf_life_days
    result = replay(supply, demand, garlic_campaigns, shelf, 0.01, ceiling_uplifts=uplifts)
    assert result.ceiling is not None
    ceiling = result.ceiling.surplus_cleared_share
    assert result.recommended.surplus_cleared_share <= ceiling + 1e-9
    assert result.naive.surplus_cleared_share <= ceiling + 1e-9
    assert ceiling > result.recommended.surplus_cleared_share  # campaigns do pause between
    # A platform that is not in the demand sells nothing, so it adds nothing.
    more = replay(supply, demand, [], shelf, 0.01, ceiling_uplifts={**uplifts, "nobody": 9.0})
    assert more.ceiling == result.ceiling
    assert replay(supply, demand, garlic_campaigns, shelf, 0.01).ceiling is None


def test_replay_recommended_beats_a_campaign_at_harvest_start_for_a_fragile_crop():
    weeks = _weeks(16, date(2024, 5, 6))
    shares = np.array([0, 0, 2, 5, 10, 18, 30, 18, 10, 5, 2, 0, 0, 0, 0, 0], dtype=float)
    harvest = dict(zip(weeks, 600_000.0 * shares / shares.sum(), strict=True))
    supply = _supply("tomato", "mengzi", harvest, spread=0.2)
    demand = _demand("tomato", "mengzi", weeks, {"pdd": 3_000.0})
    recs = recommend_campaigns(
        balance(supply, demand), [PDD], estimate_uplifts([]), CROPS, date(2024, 5, 1), demand=demand
    )
    assert recs
    daily = _daily(harvest, weeks[0], weeks[-1] + timedelta(days=6))
    result = replay(
        daily,
        {"pdd": pd.Series(3_000.0, index=daily.index)},
        recs,
        CROPS["tomato"].shelf_life_days,
        CROPS["tomato"].postharvest_loss_per_week,
    )
    assert result.recommended.surplus_cleared_share > result.naive.surplus_cleared_share
    assert result.naive.surplus_cleared_share > result.none.surplus_cleared_share


# --- planting ----------------------------------------------------------------------------


def _farms(region: str, n: int, crops: dict[str, tuple[float, float]], seed: int = 1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        [
            {
                "farm": f"{region}-{k:04d}",
                "region": region,
                "crop": crop,
                "area_ha": rng.uniform(*area),
            }
            for k in range(n)
            for crop, area in crops.items()
        ]
    )


def _regional(plan, crop: str) -> pd.Series:
    return plan.regions.set_index("crop").loc[crop]


def test_oversupplied_garlic_area_goes_down():
    current = _farms("zhongmou", 200, {"garlic": (1.5, 4.5), "maize": (0.3, 1.0)})
    garlic_t = current.loc[current["crop"] == "garlic", "area_ha"].sum() * 16.0
    economics = [
        # The market takes about 60 % of what is grown at the reference price.
        CropEconomics(
            "garlic",
            "zhongmou",
            yield_t_ha_p10=12.0,
            yield_t_ha_p50=16.0,
            cost_cny_per_ha=30_000.0,
            price_curve=linear_price_curve(0.6 * garlic_t, 6.0, -1.1),
        ),
        CropEconomics(
            "maize",
            "zhongmou",
            yield_t_ha_p10=6.0,
            yield_t_ha_p50=8.0,
            cost_cny_per_ha=8_000.0,
            price_curve=((0.0, 2.0), (1e6, 2.0)),
        ),
    ]
    plan = recommend_planting(current, economics, PlantingConstraints(max_change_share=0.2))
    garlic = _regional(plan, "garlic")
    assert garlic["recommended_ha"] < garlic["current_ha"]
    assert garlic["expected_price_cny_per_kg_after"] > garlic["expected_price_cny_per_kg_before"]
    assert plan.summary["expected_margin_cny_after"] > plan.summary["expected_margin_cny_before"]
    rows = plan.farms[plan.farms["crop"] == "garlic"]
    assert (rows["change_ha"] <= 1e-9).all()
    assert any("max_change_down" in b for b in rows["binding"])
    assert all(r[0].startswith("less garlic") for r in rows["reasons"])


def test_surging_snow_lotus_area_goes_up():
    current = _farms(
        "mengzi", 200, {"snow_lotus_fruit": (0.8, 2.4), "maize": (0.3, 1.0), "tomato": (0.1, 0.5)}
    )
    lotus_t = current.loc[current["crop"] == "snow_lotus_fruit", "area_ha"].sum() * 35.0
    economics = [
        # Demand has surged: the market takes three times today's crop at 4.5 CNY/kg.
        CropEconomics(
            "snow_lotus_fruit",
            "mengzi",
            yield_t_ha_p10=25.0,
            yield_t_ha_p50=35.0,
            cost_cny_per_ha=40_000.0,
            price_curve=linear_price_curve(3.0 * lotus_t, 4.5, -1.2),
        ),
        CropEconomics(
            "maize",
            "mengzi",
            yield_t_ha_p10=6.0,
            yield_t_ha_p50=8.0,
            cost_cny_per_ha=8_000.0,
            price_curve=((0.0, 2.0), (1e6, 2.0)),
        ),
        CropEconomics(
            "tomato",
            "mengzi",
            yield_t_ha_p10=40.0,
            yield_t_ha_p50=55.0,
            cost_cny_per_ha=90_000.0,
            price_curve=linear_price_curve(0.5 * 55 * 60, 3.0, -0.8),
        ),
    ]
    constraints = PlantingConstraints(max_change_share=0.2, min_staple_share_per_farm=0.1)
    plan = recommend_planting(current, economics, constraints)
    lotus = _regional(plan, "snow_lotus_fruit")
    assert lotus["recommended_ha"] > lotus["current_ha"]
    rows = plan.farms[plan.farms["crop"] == "snow_lotus_fruit"]
    assert all(r[0].startswith("more snow_lotus_fruit") for r in rows["reasons"])


def _random_instance(seed: int):
    rng = np.random.default_rng(seed)
    crops = ["garlic", "maize", "potato", "tomato", "snow_lotus_fruit"]
    rows = []
    for k in range(40):
        region = "north" if k % 2 else "south"
        grown = rng.choice(crops, size=rng.integers(1, 4), replace=False)
        for crop in grown:
            rows.append(
                {
                    "farm": f"f{k:03d}",
                    "region": region,
                    "crop": str(crop),
                    "area_ha": float(rng.uniform(0.2, 5.0)),
                }
            )
    current = pd.DataFrame(rows)
    economics = []
    for region in ("north", "south"):
        for crop in crops:
            p50 = float(rng.uniform(5, 40))
            grown_t = current.loc[current["crop"] == crop, "area_ha"].sum() * p50 / 2
            economics.append(
                CropEconomics(
                    crop,
                    region,
                    yield_t_ha_p10=p50 * rng.uniform(0.5, 0.95),
                    yield_t_ha_p50=p50,
                    cost_cny_per_ha=float(rng.uniform(5_000, 60_000)),
                    price_curve=linear_price_curve(
                        max(grown_t, 1.0) * rng.uniform(0.3, 3.0),
                        float(rng.uniform(1, 8)),
                        float(-rng.uniform(0.5, 2.0)),
                    ),
                )
            )
    land = {
        f: float(a) * float(rng.uniform(1.0, 1.3))
        for f, a in current.groupby("farm")["area_ha"].sum().items()
    }
    constraints = PlantingConstraints(
        land_ha=land,
        max_change_share=float(rng.uniform(0.1, 0.3)),
        max_change_share_by_crop={"snow_lotus_fruit": 0.05},
        rotation=(
            RotationRule("garlic", float(rng.uniform(0.3, 0.7)), 0.2),
            RotationRule("tomato", 0.5, 0.3),
        ),
        min_staple_share_per_farm=float(rng.uniform(0.1, 0.3)),
        min_staple_ha_per_region={"north": 30.0},
    )
    return current, economics, constraints


@pytest.mark.parametrize("seed", range(6))
def test_planting_respects_every_constraint_on_random_instances(seed):
    current, economics, cons = _random_instance(seed)
    risk = ["mean", "p10", ("cvar", 0.2, 0.7)][seed % 3]
    plan = recommend_planting(current, economics, cons, risk)
    farms = plan.farms
    tol = 1e-6
    staples = set(cons.staple_crops)
    region_reach: dict[str, float] = {}
    region_staple: dict[str, float] = {}
    for farm, rows in farms.groupby("farm"):
        land = cons.land_ha[farm]
        assert rows["recommended_ha"].min() >= -tol
        assert rows["recommended_ha"].sum() <= land + tol  # land
        reach_staple, other_floor = 0.0, 0.0
        for row in rows.itertuples():
            delta = cons.max_change_share_by_crop.get(row.crop, cons.max_change_share)
            floor = max(0.0, row.current_ha - delta * land)
            assert abs(row.recommended_ha - row.current_ha) <= delta * land + tol  # max change
            cap = min(row.current_ha + delta * land, land)
            for rule in cons.rotation:  # rotation, or as far as the change limit allows
                if rule.crop == row.crop:
                    share_cap = rule.max_share_of_farm * land
                    repeat_cap = rule.max_repeat_share_of_farm * land + land - row.current_ha
                    assert row.recommended_ha <= max(share_cap, floor) + tol
                    assert row.recommended_ha <= max(repeat_cap, floor) + tol
                    cap = min(cap, share_cap, repeat_cap)
            cap = max(cap, floor)
            if row.crop in staples:
                reach_staple += cap
            else:
                other_floor += floor
        staple_ha = rows.loc[rows["crop"].isin(staples), "recommended_ha"].sum()
        reachable = min(reach_staple, land - other_floor)
        if rows["crop"].isin(staples).any():  # staple minimum, as far as reachable
            assert staple_ha >= min(cons.min_staple_share_per_farm * land, reachable) - tol
        region = rows["region"].iloc[0]
        region_reach[region] = region_reach.get(region, 0.0) + reachable
        region_staple[region] = region_staple.get(region, 0.0) + staple_ha
    for region, asked in cons.min_staple_ha_per_region.items():
        assert region_staple[region] >= min(asked, region_reach[region]) - 1e-5


def test_risk_aware_plans_are_more_conservative_than_the_mean_plan():
    current = _farms("mengzi", 100, {"snow_lotus_fruit": (0.5, 1.5), "maize": (0.5, 1.5)})
    economics = [
        # A high-margin crop with very uncertain yields and a price that barely responds,
        # against a safe staple.
        CropEconomics(
            "snow_lotus_fruit",
            "mengzi",
            yield_t_ha_p10=15.0,
            yield_t_ha_p50=35.0,
            cost_cny_per_ha=100_000.0,
            price_curve=((0.0, 4.6), (1e6, 4.4)),
        ),
        CropEconomics(
            "maize",
            "mengzi",
            yield_t_ha_p10=7.5,
            yield_t_ha_p50=8.0,
            cost_cny_per_ha=8_000.0,
            price_curve=((0.0, 2.0), (1e6, 2.0)),
        ),
    ]
    cons = PlantingConstraints(max_change_share=0.3)
    mean = recommend_planting(current, economics, cons, "mean")
    p10 = recommend_planting(current, economics, cons, "p10")
    cvar = recommend_planting(current, economics, cons, ("cvar", 0.1, 0.9))
    lotus = {
        name: _regional(plan, "snow_lotus_fruit")["recommended_ha"]
        for name, plan in (("mean", mean), ("p10", p10), ("cvar", cvar))
    }
    assert lotus["p10"] < lotus["mean"]
    assert lotus["cvar"] < lotus["mean"]
    assert mean.summary["expected_margin_cny_after"] >= cvar.summary["expected_margin_cny_after"]
    assert cvar.summary["cvar_margin_cny_after"] >= mean.summary["cvar_margin_cny_after"] - 1e-6


def test_a_thousand_farms_with_seven_crops_solve_in_seconds():
    crops = ["garlic", "maize", "potato", "tomato", "snow_lotus_fruit", "jujube", "fragrant_pear"]
    rng = np.random.default_rng(7)
    regions = [f"r{k}" for k in range(5)]
    current = pd.DataFrame(
        [
            {
                "farm": f"f{k:04d}",
                "region": regions[k % 5],
                "crop": crop,
                "area_ha": float(rng.uniform(0.1, 2.0)),
            }
            for k in range(1000)
            for crop in crops
        ]
    )
    economics = [
        CropEconomics(
            crop,
            region,
            yield_t_ha_p10=0.7 * CROPS[crop].potential_yield_t_ha,
            yield_t_ha_p50=CROPS[crop].potential_yield_t_ha,
            cost_cny_per_ha=float(rng.uniform(5_000, 40_000)),
            price_curve=linear_price_curve(
                200 * CROPS[crop].potential_yield_t_ha, CROPS[crop].reference_price_cny_per_kg, -1.0
            ),
        )
        for crop in crops
        for region in regions
    ]
    cons = PlantingConstraints(
        rotation=(RotationRule("garlic", 0.5, 0.2),), min_staple_share_per_farm=0.1
    )
    timings = {}
    for risk in ("mean", ("cvar", 0.1, 0.5)):
        started = time.perf_counter()
        plan = recommend_planting(current, economics, cons, risk)
        timings[str(risk)] = (time.perf_counter() - started, plan.solve_seconds, plan.n_variables)
        assert len(plan.farms) == 7000
    print(f"1,000 farms x 7 crops: {timings}")
    assert all(total < 20.0 for total, _, _ in timings.values())


# --- what-if -----------------------------------------------------------------------------

_DAYS_TO_HARVEST = {"garlic": 235, "maize": 110}
_YIELD_T_HA = {"garlic": 16.0, "maize": 8.0}


def _toy_fields(plan: pd.DataFrame, weather: str | None) -> pd.DataFrame:
    """Each field's yield fixed per crop (a fifth less in a drought), harvested over two
    weeks from planting + a fixed season length."""
    factor = 0.8 if weather == "drought" else 1.0
    out = plan.copy()
    harvest = [
        pd.Timestamp(p).date() + timedelta(days=_DAYS_TO_HARVEST[c])
        for p, c in zip(plan["planted_on"], plan["crop"], strict=True)
    ]
    yields = plan["crop"].map(_YIELD_T_HA) * factor
    out["yield_t_ha_p10"], out["yield_t_ha_p50"], out["yield_t_ha_p90"] = (
        yields * 0.85,
        yields,
        yields * 1.1,
    )
    for column, days in (("harvest_p10", 0), ("harvest_p50", 7), ("harvest_p90", 14)):
        out[column] = [h + timedelta(days=days) for h in harvest]
    return out


def _market(demand: pd.DataFrame, platforms, **kwargs) -> Market:
    return Market(
        as_of=AS_OF,
        demand=demand,
        observed_weekly=pd.DataFrame(),
        platforms=platforms,
        uplifts=estimate_uplifts([]),
        **kwargs,
    )


def _field_plan() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for k in range(100):
        for n, crop in enumerate(("garlic", "maize")):
            planted = date(2023, 10, 2) if crop == "garlic" else date(2024, 6, 10)
            rows.append(
                {
                    "farm": f"zm-{k:03d}",
                    "field": f"f{n + 1:02d}",
                    "region": "zhongmou",
                    "crop": crop,
                    "soil": "loam",
                    "area_ha": float(rng.uniform(1.0, 3.0)),
                    "year": 2024,
                    "planted_on": planted,
                }
            )
    return pd.DataFrame(rows)


def test_what_if_a_bigger_garlic_area_increases_the_surplus():
    plan = _field_plan()
    weeks = _weeks(60, date(2024, 1, 1))
    demand = pd.concat(
        [
            _demand("garlic", "zhongmou", weeks, {"pdd": 8_000.0, "meituan": 4_000.0}),
            _demand("maize", "zhongmou", weeks, {"pdd": 8_000.0}),
        ]
    )
    market = _market(demand, [PDD, MEITUAN], planting=None)
    untouched = plan.copy()
    result = what_if(plan, PlanChange(area_scale_by_crop={"garlic": 1.5}), _toy_fields, market)
    pd.testing.assert_frame_equal(plan, untouched)  # nothing changed in place
    compared = result.comparison().set_index("crop").loc["garlic"]
    assert compared["peak_surplus_kg_p50_after"] > compared["peak_surplus_kg_p50_before"]
    assert compared["value_at_risk_cny_after"] > compared["value_at_risk_cny_before"]
    assert result.changed.campaigns and result.changed.planting is None


@pytest.mark.parametrize(
    "change",
    [
        PlanChange(area_scale_by_crop={"pineapple": 2.0}),
        PlanChange(planting_shift_days_by_crop={"pineapple": 7}),
    ],
)
def test_what_if_refuses_to_change_a_crop_the_plan_does_not_grow(change):
    grown = r"\(it has garlic, maize\)"
    with pytest.raises(ValueError, match=f"no field grows pineapple in the plan {grown}"):
        apply_plan_change(_field_plan(), change)


def test_what_if_shifts_the_harvest_with_the_planting_date_and_weather_cuts_it():
    plan = _field_plan()
    demand = _demand("garlic", "zhongmou", _weeks(60, date(2024, 1, 1)), {"pdd": 8_000.0})
    market = _market(demand, [PDD], planting=None)
    change = PlanChange(planting_shift_days_by_crop={"garlic": 14}, weather="drought")
    result = what_if(plan, change, _toy_fields, market)

    def first_week(supply: pd.DataFrame) -> date:
        return supply.loc[supply["crop"] == "garlic", "week"].min()

    assert first_week(result.changed.supply) == first_week(result.baseline.supply) + timedelta(
        weeks=2
    )
    before = surplus_summary(result.baseline).set_index("crop").loc["garlic"]
    after = surplus_summary(result.changed).set_index("crop").loc["garlic"]
    assert after["peak_surplus_kg_p50"] < before["peak_surplus_kg_p50"]


def test_what_if_recommends_planting_for_the_changed_plan_without_touching_the_baseline():
    plan = _field_plan()
    garlic_ha = plan.loc[plan["crop"] == "garlic", "area_ha"].sum()
    demand = _demand("garlic", "zhongmou", _weeks(60, date(2024, 1, 1)), {"pdd": 8_000.0})
    economics = [
        CropEconomics(
            "garlic",
            "zhongmou",
            yield_t_ha_p10=12.0,
            yield_t_ha_p50=16.0,
            cost_cny_per_ha=30_000.0,
            price_curve=linear_price_curve(16.0 * garlic_ha, 6.0, -1.1),
        ),
        CropEconomics(
            "maize",
            "zhongmou",
            yield_t_ha_p10=6.0,
            yield_t_ha_p50=8.0,
            cost_cny_per_ha=8_000.0,
            price_curve=((0.0, 2.0), (1e6, 2.0)),
        ),
    ]
    market = _market(demand, [PDD], economics=economics, planting=PlantingSettings(risk="mean"))
    result = what_if(plan, PlanChange(area_scale_by_crop={"garlic": 1.5}), _toy_fields, market)
    assert result.baseline.planting is not None and result.changed.planting is not None
    before = _regional(result.baseline.planting, "garlic")
    after = _regional(result.changed.planting, "garlic")
    assert after["current_ha"] == pytest.approx(1.5 * before["current_ha"])
    assert after["change_ha"] < 0  # the bigger garlic area is pushed back down
    assert after["change_ha"] < before["change_ha"]


def test_a_glut_far_beyond_what_the_platforms_take_still_gets_its_campaigns():
    # 100 times the garlic glut: no campaign clears more than a sliver of it, and each
    # still saves hundreds of tonnes from rotting.
    harvest = _garlic_harvest(100 * GARLIC_TOTAL_KG)
    supply = _supply("garlic", "zhongmou", harvest)
    demand = _demand("garlic", "zhongmou", GARLIC_WEEKS, GARLIC_DEMAND)
    recs = recommend_campaigns(
        balance(supply, demand), [PDD, MEITUAN], estimate_uplifts([]), CROPS, AS_OF, demand=demand
    )
    assert len(recs) >= 4
    surplus = sum(harvest.values())
    assert all(1000 <= r.expected_absorbed_kg < 0.01 * surplus for r in recs)
