"""The simulated market: festivals, daily demand, campaign history, demand in the store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from agrimatch.agronomy import CROPS
from agrimatch.scenario import CampaignPlan, DemandProfile, DemandShock, load_scenario
from agrimatch.store.port import Point, Rejected, WriteResult
from firmware_sim.market import (
    CROP_MARKETS,
    HANGOVER_DAYS,
    DemandRejected,
    daily_demand,
    day_start_ms,
    demand_points,
    evaluate_campaign,
    evaluate_campaigns,
    festival_dates,
    festival_multiplier,
    write_demand,
)
from firmware_sim.market.demand import seasonality, stable_seed

SEED = 7


def profile(crop: str = "garlic", **changes: object) -> DemandProfile:
    values: dict[str, object] = {
        "platform": "pdd",
        "crop": crop,
        "region": "zhongmou",
        "base_kg_per_day": 7_500.0,
        "price_cny_per_kg": 6.0,
    }
    values.update(changes)
    return DemandProfile.model_validate(values)


def campaign(start: date, end: date, crop: str = "garlic", **changes: object) -> CampaignPlan:
    values: dict[str, object] = {
        "platform": "pdd",
        "crop": crop,
        "region": "zhongmou",
        "start": start,
        "end": end,
        "uplift": 4.0,
        "hangover": 0.2,
    }
    values.update(changes)
    return CampaignPlan.model_validate(values)


# -- festival calendar ----------------------------------------------------------


def test_lunar_festival_dates_come_from_the_holiday_calendar():
    # Published dates of Spring Festival and Mid-Autumn, to check the lookup against.
    expected = {
        2018: (date(2018, 2, 16), date(2018, 9, 24)),
        2020: (date(2020, 1, 25), date(2020, 10, 1)),
        2023: (date(2023, 1, 22), date(2023, 9, 29)),
        2024: (date(2024, 2, 10), date(2024, 9, 17)),
        2025: (date(2025, 1, 29), date(2025, 10, 6)),
    }
    for year, (spring, mid_autumn) in expected.items():
        days = festival_dates(year)
        assert days["spring_festival"] == spring
        assert days["mid_autumn"] == mid_autumn
        assert days["618"] == date(year, 6, 18)
        assert days["double_11"] == date(year, 11, 11)


def test_festival_buying_peaks_before_spring_festival_and_on_the_shopping_days():
    start, end = date(2024, 1, 1), date(2024, 12, 31)
    multiplier = festival_multiplier(start, end)
    spring = (date(2024, 2, 10) - start).days
    assert multiplier[spring - 14 : spring - 4].min() > 1.5
    assert multiplier[spring + 1 : spring + 6].max() < 1.0  # couriers stop over the holiday
    assert multiplier[(date(2024, 6, 18) - start).days] > 1.3
    assert multiplier[(date(2024, 11, 11) - start).days] == multiplier.max()
    assert multiplier[(date(2024, 4, 15) - start).days] == 1.0


def test_festival_sensitivity_scales_the_effect_and_zero_removes_it():
    start, end = date(2024, 10, 1), date(2024, 11, 30)
    single = festival_multiplier(start, end, 1.0)
    double = festival_multiplier(start, end, 2.0)
    np.testing.assert_allclose(double, single**2)
    np.testing.assert_array_equal(festival_multiplier(start, end, 0.0), 1.0)


def test_a_days_festival_multiplier_does_not_depend_on_the_range():
    whole = festival_multiplier(date(2024, 11, 1), date(2025, 2, 28))
    december = festival_multiplier(date(2024, 11, 1), date(2024, 12, 31))
    new_year = festival_multiplier(date(2025, 1, 1), date(2025, 2, 28))
    np.testing.assert_array_equal(whole, np.concatenate([december, new_year]))


def test_a_year_without_a_lunar_festival_date_is_refused():
    # Mid-Autumn became a public holiday (and so entered the calendar) only in 2008.
    with pytest.raises(ValueError, match="no mid_autumn date for 2005"):
        festival_multiplier(date(2005, 1, 1), date(2005, 12, 31))


# -- daily demand ---------------------------------------------------------------


def test_the_same_seed_gives_the_same_series():
    first = daily_demand(profile(), date(2018, 1, 1), date(2018, 12, 31), seed=SEED)
    again = daily_demand(profile(), date(2018, 1, 1), date(2018, 12, 31), seed=SEED)
    np.testing.assert_array_equal(first.quantity_kg, again.quantity_kg)
    np.testing.assert_array_equal(first.orders, again.orders)
    np.testing.assert_array_equal(first.price_cny_per_kg, again.price_cny_per_kg)


def test_another_seed_or_series_gives_other_noise():
    days = (date(2018, 1, 1), date(2018, 3, 31))
    base = daily_demand(profile(), *days, seed=SEED).quantity_kg
    assert not np.allclose(base, daily_demand(profile(), *days, seed=SEED + 1).quantity_kg)
    other_region = profile(region="jinxiang")
    assert not np.allclose(base, daily_demand(other_region, *days, seed=SEED).quantity_kg)


def test_the_seed_hash_is_stable_across_processes():
    # blake2b of a fixed text, not hash(): this number must never change.
    assert stable_seed(1, "demand-noise", "pdd", "garlic", "zhongmou", 2018) == stable_seed(
        "1|demand-noise|pdd|garlic|zhongmou|2018"
    )
    assert stable_seed("agrimatch") == 0xDFB0949C70393933


def test_a_day_has_the_same_demand_whatever_range_it_is_generated_in():
    origin = date(2018, 1, 1)
    whole = daily_demand(profile(), origin, date(2019, 12, 31), seed=SEED, trend_origin=origin)
    window = daily_demand(
        profile(), date(2019, 3, 1), date(2019, 4, 30), seed=SEED, trend_origin=origin
    )
    i = whole.index(date(2019, 3, 1))
    np.testing.assert_allclose(window.quantity_kg, whole.quantity_kg[i : i + len(window)])


def test_orders_are_quantity_over_the_crops_typical_parcel():
    series = daily_demand(profile(), date(2018, 5, 1), date(2018, 5, 31), seed=SEED)
    np.testing.assert_array_equal(series.orders, np.rint(series.quantity_kg / 2.5))
    pears = daily_demand(profile("fragrant_pear"), date(2018, 5, 1), date(2018, 5, 31), seed=SEED)
    np.testing.assert_array_equal(pears.orders, np.rint(pears.quantity_kg / 5.0))


def test_every_crop_in_the_catalog_has_a_market_shape():
    assert set(CROPS) <= set(CROP_MARKETS)


def test_seasonality_averages_one_over_a_year():
    for market in CROP_MARKETS.values():
        assert seasonality(market, np.arange(365)).mean() == pytest.approx(1.0, abs=0.01)


def test_pears_and_jujubes_peak_in_autumn_garlic_stays_steady_snow_lotus_fruit_in_winter():
    def monthly_mean(crop: str, month: int) -> float:
        quiet = profile(crop, noise=0.0, festival_sensitivity=0.0)
        series = daily_demand(quiet, date(2019, 1, 1), date(2019, 12, 31), seed=SEED)
        in_month = [d.month == month for d in series.days]
        return float(series.quantity_kg[in_month].mean())

    assert monthly_mean("fragrant_pear", 10) > 3 * monthly_mean("fragrant_pear", 4)
    assert monthly_mean("jujube", 10) > 2 * monthly_mean("jujube", 4)
    assert monthly_mean("snow_lotus_fruit", 12) > 3 * monthly_mean("snow_lotus_fruit", 6)
    garlic_winter, garlic_summer = monthly_mean("garlic", 1), monthly_mean("garlic", 7)
    assert garlic_summer < garlic_winter < 2 * garlic_summer


@pytest.mark.parametrize("crop", ["garlic", "jujube"])
@pytest.mark.parametrize("year", [2019, 2020, 2024])
def test_demand_peaks_in_the_two_weeks_before_spring_festival(crop, year):
    spring = festival_dates(year)["spring_festival"]
    series = daily_demand(
        profile(crop), spring - timedelta(days=45), spring + timedelta(days=45), seed=SEED
    )
    i = series.index(spring)
    two_weeks_before = series.quantity_kg[i - 14 : i]
    surrounding_month = series.quantity_kg[i - 15 : i + 16]
    assert two_weeks_before.mean() > 1.3 * np.median(surrounding_month)
    assert two_weeks_before.mean() > 1.5 * np.median(series.quantity_kg)


def test_double_11_bumps_demand():
    series = daily_demand(
        profile("fragrant_pear"), date(2019, 10, 25), date(2019, 11, 30), seed=SEED
    )
    november = series.quantity_kg[series.index(date(2019, 11, 1)) :]
    assert series.quantity_kg[series.index(date(2019, 11, 11))] > 1.4 * np.median(november)


def test_demand_grows_with_the_trend():
    growing = profile(trend_per_year=0.5, noise=0.0)
    origin = date(2018, 1, 1)
    series = daily_demand(growing, origin, date(2019, 12, 31), seed=SEED, trend_origin=origin)
    flat = daily_demand(profile(noise=0.0), origin, date(2019, 12, 31), seed=SEED)
    ratio = series.quantity_kg / flat.quantity_kg
    assert ratio[series.index(date(2019, 1, 1))] == pytest.approx(1.5, rel=0.01)


def test_a_higher_price_lowers_demand_by_the_elasticity():
    days = (date(2018, 6, 1), date(2018, 6, 30))
    elastic = profile(price_elasticity=-1.2)
    cheap = daily_demand(elastic, *days, seed=SEED, price_cny_per_kg=np.full(30, 6.0))
    dear = daily_demand(elastic, *days, seed=SEED, price_cny_per_kg=np.full(30, 12.0))
    assert (dear.quantity_kg < cheap.quantity_kg).all()
    np.testing.assert_allclose(dear.quantity_kg / cheap.quantity_kg, 2.0**-1.2)
    np.testing.assert_array_equal(dear.price_cny_per_kg, 12.0)


def test_a_glut_lowers_the_price_and_raises_demand():
    days = (date(2018, 5, 1), date(2018, 5, 31))
    normal = daily_demand(profile(), *days, seed=SEED)
    glut = daily_demand(profile(), *days, seed=SEED, supply_pressure=np.full(31, 4.0))
    np.testing.assert_allclose(glut.price_cny_per_kg, normal.price_cny_per_kg / 2.0)
    assert (glut.quantity_kg > normal.quantity_kg).all()


def test_the_default_price_is_lowest_around_harvest():
    series = daily_demand(profile(), date(2018, 1, 1), date(2018, 12, 31), seed=SEED)
    cheapest = series.days[int(np.argmin(series.price_cny_per_kg))]
    assert cheapest.month == 5  # Zhongmou garlic is dug in May
    assert series.price_cny_per_kg.mean() == pytest.approx(6.0, rel=0.01)


def test_a_campaign_lifts_demand_by_its_uplift_then_a_hangover_dip_follows():
    plan = campaign(date(2018, 6, 1), date(2018, 6, 10), uplift=4.0, hangover=0.2)
    days = (date(2018, 5, 1), date(2018, 7, 15))
    with_it = daily_demand(profile(), *days, seed=SEED, campaigns=[plan])
    without = daily_demand(profile(), *days, seed=SEED)
    ratio = with_it.quantity_kg / without.quantity_kg
    first, last = with_it.index(plan.start), with_it.index(plan.end)
    np.testing.assert_allclose(ratio[first : last + 1], 4.0)
    # Against the demand seen before it, roughly the uplift too (noise, 618 nearby).
    before = with_it.quantity_kg[first - 14 : first].mean()
    assert with_it.quantity_kg[first : last + 1].mean() / before == pytest.approx(4.0, rel=0.25)
    # The day after: down by the hangover, fading over two weeks.
    assert ratio[last + 1] == pytest.approx(0.8)
    assert (np.diff(ratio[last + 1 : last + 1 + HANGOVER_DAYS]) > 0).all()
    assert ratio[last + HANGOVER_DAYS] > 0.98
    np.testing.assert_allclose(ratio[last + 1 + HANGOVER_DAYS :], 1.0)
    np.testing.assert_allclose(ratio[:first], 1.0)


def test_campaigns_of_other_platforms_crops_or_regions_do_not_act():
    days = (date(2018, 6, 1), date(2018, 6, 10))
    others = [
        campaign(*days, platform="jd"),
        campaign(*days, crop="jujube"),
        campaign(*days, region="jinxiang"),
    ]
    with_others = daily_demand(profile(), *days, seed=SEED, campaigns=others)
    np.testing.assert_array_equal(
        with_others.quantity_kg, daily_demand(profile(), *days, seed=SEED).quantity_kg
    )


def test_a_demand_shock_raises_later_demand():
    # A new use (weight loss) makes snow lotus fruit popular from spring 2017.
    shock = DemandShock(start=date(2017, 4, 1), ramp_days=90, multiplier=6.0)
    days = (date(2016, 1, 1), date(2018, 12, 31))
    shocked = daily_demand(profile("snow_lotus_fruit", shocks=(shock,)), *days, seed=SEED)
    plain = daily_demand(profile("snow_lotus_fruit"), *days, seed=SEED)
    ratio = shocked.quantity_kg / plain.quantity_kg
    start = shocked.index(shock.start)
    np.testing.assert_allclose(ratio[: start + 1], 1.0)
    assert (np.diff(ratio[start : start + 91]) >= 0).all()
    assert ratio[start + 45] == pytest.approx(3.5, rel=0.01)  # half-way up the ramp
    np.testing.assert_allclose(ratio[start + 90 :], 6.0)
    year_before = plain.quantity_kg[plain.index(date(2016, 10, 1)) : plain.index(date(2017, 3, 1))]
    year_after = shocked.quantity_kg[
        shocked.index(date(2017, 10, 1)) : shocked.index(date(2018, 3, 1))
    ]
    assert year_after.sum() > 4 * year_before.sum()


def test_a_shock_without_a_ramp_is_a_step():
    shock = DemandShock(start=date(2018, 3, 10), ramp_days=0, multiplier=0.5)
    days = (date(2018, 3, 1), date(2018, 3, 20))
    ratio = (
        daily_demand(profile(shocks=(shock,)), *days, seed=SEED).quantity_kg
        / daily_demand(profile(), *days, seed=SEED).quantity_kg
    )
    np.testing.assert_allclose(ratio[:9], 1.0)
    np.testing.assert_allclose(ratio[9:], 0.5)


def test_the_shipped_food_safety_scare_steps_jujube_demand_down_and_leaves_potato_alone():
    # jujube-scare: a report of fumigated jujubes, September 2022, demand to 45 % in 3 weeks.
    scenario = load_scenario("jujube-scare")
    days = (date(2022, 1, 1), date(2023, 12, 31))
    by_crop = {p.crop: p for p in scenario.demand}
    jujube = by_crop["jujube"]
    [scare] = jujube.shocks
    shocked = daily_demand(jujube, *days, seed=scenario.seed)
    plain = daily_demand(jujube.model_copy(update={"shocks": ()}), *days, seed=scenario.seed)
    ratio = shocked.quantity_kg / plain.quantity_kg
    start = shocked.index(scare.start)
    np.testing.assert_allclose(ratio[: start + 1], 1.0)
    assert (np.diff(ratio[start : start + scare.ramp_days + 1]) <= 0).all()  # down, never back
    np.testing.assert_allclose(ratio[start + scare.ramp_days :], 0.45)
    assert not by_crop["potato"].shocks


def test_bad_ranges_and_price_inputs_are_refused():
    with pytest.raises(ValueError, match="before start"):
        daily_demand(profile(), date(2018, 2, 1), date(2018, 1, 1), seed=SEED)
    with pytest.raises(ValueError, match="one value per day"):
        daily_demand(
            profile(), date(2018, 1, 1), date(2018, 1, 10), seed=SEED, price_cny_per_kg=[1]
        )
    with pytest.raises(ValueError, match="not both"):
        daily_demand(
            profile(),
            date(2018, 1, 1),
            date(2018, 1, 2),
            seed=SEED,
            price_cny_per_kg=[5, 5],
            supply_pressure=[1, 1],
        )
    with pytest.raises(ValueError, match="positive"):
        daily_demand(
            profile(), date(2018, 1, 1), date(2018, 1, 2), seed=SEED, supply_pressure=[1, 0]
        )


def test_the_series_arrays_cannot_be_changed():
    series = daily_demand(profile(), date(2018, 1, 1), date(2018, 1, 5), seed=SEED)
    with pytest.raises(ValueError):
        series.quantity_kg[0] = 0.0


# -- magnitudes: the seed paper's cases --------------------------------------------


def test_a_zhongmou_garlic_campaign_sells_about_165_t_on_its_peak_day():
    # Calibration (firmware_sim.market.demand): a large platform's everyday demand for
    # Zhongmou garlic of 7,500 kg/day at 6 CNY/kg and a campaign uplift of 20; the case
    # sold 330,000 jin = 165 t on the first day, adding about a million yuan.
    plan = campaign(date(2018, 4, 10), date(2018, 4, 20), uplift=20.0)
    quiet = daily_demand(profile(noise=0.0), plan.start, plan.end, seed=SEED, campaigns=[plan])
    assert quiet.quantity_kg.max() == pytest.approx(165_000, rel=0.05)
    for seed in range(5):
        outcome = evaluate_campaign(plan, profile(), seed=seed)
        assert 110_000 < outcome.peak_day_kg < 250_000
        first_day = outcome.revenue_cny / outcome.volume_kg * 165_000
        assert 0.5e6 < first_day < 2e6


def test_a_korla_pear_campaign_sells_about_500_t_in_under_two_months():
    pears = profile("fragrant_pear", region="korla", base_kg_per_day=1_300.0, price_cny_per_kg=8.0)
    plan = campaign(
        date(2018, 9, 25), date(2018, 11, 13), crop="fragrant_pear", region="korla", uplift=3.0
    )
    outcome = evaluate_campaign(plan, pears, seed=SEED)
    assert outcome.volume_kg == pytest.approx(500_000, rel=0.1)


def test_snow_lotus_fruit_after_its_new_use_sells_about_18_000_t_a_year():
    shock = DemandShock(start=date(2017, 6, 1), ramp_days=120, multiplier=10.0)
    yacon = profile(
        "snow_lotus_fruit",
        region="yunnan",
        base_kg_per_day=4_200.0,
        price_cny_per_kg=4.0,
        shocks=(shock,),
    )
    year = daily_demand(yacon, date(2018, 1, 1), date(2018, 12, 31), seed=SEED)
    assert year.quantity_kg.sum() == pytest.approx(18_000_000, rel=0.1)  # 36 million jin


# -- campaign history --------------------------------------------------------------


def test_a_campaign_outcome_compares_sales_with_the_baseline():
    plan = campaign(date(2018, 6, 1), date(2018, 6, 10), uplift=4.0, hangover=0.2)
    outcome = evaluate_campaign(plan, profile(), seed=SEED)
    assert outcome.uplift_achieved == pytest.approx(4.0)
    assert outcome.volume_kg == pytest.approx(4.0 * outcome.baseline_kg)
    assert outcome.demand_kg == outcome.volume_kg
    assert not outcome.sold_out
    assert outcome.hangover_kg > 0
    assert plan.start <= outcome.peak_day <= plan.end
    assert outcome.orders == round(outcome.volume_kg / 2.5)
    series = daily_demand(profile(), plan.start, plan.end, seed=SEED, campaigns=[plan])
    assert outcome.volume_kg == pytest.approx(series.quantity_kg.sum())


def test_limited_supply_caps_what_a_campaign_sells():
    plan = campaign(date(2018, 6, 1), date(2018, 6, 10), uplift=4.0)
    unlimited = evaluate_campaign(plan, profile(), seed=SEED)
    short = evaluate_campaign(plan, profile(), seed=SEED, supply_kg=unlimited.demand_kg / 2)
    assert short.volume_kg == pytest.approx(unlimited.demand_kg / 2)
    assert short.sold_out
    assert short.uplift_achieved == pytest.approx(2.0, rel=0.01)
    plenty = evaluate_campaign(plan, profile(), seed=SEED, supply_kg=unlimited.demand_kg * 2)
    assert not plenty.sold_out
    assert plenty.volume_kg == pytest.approx(unlimited.volume_kg)


def test_a_campaign_history_credits_each_campaign_only_with_its_own_uplift():
    first = campaign(date(2018, 6, 1), date(2018, 6, 10), uplift=4.0)
    overlapping = campaign(date(2018, 6, 5), date(2018, 6, 15), uplift=2.0)
    outcomes = evaluate_campaigns(
        [first, overlapping], [profile()], seed=SEED, supply_kg={overlapping: 1e9}
    )
    assert [o.uplift_achieved for o in outcomes] == pytest.approx([4.0, 2.0])
    assert outcomes[0].supply_kg is None
    assert outcomes[1].supply_kg == 1e9


def test_a_campaign_without_a_demand_profile_cannot_be_judged():
    orphan = campaign(date(2018, 6, 1), date(2018, 6, 10), crop="jujube")
    with pytest.raises(ValueError, match="no demand profile"):
        evaluate_campaigns([orphan], [profile()], seed=SEED)
    with pytest.raises(ValueError, match="does not match"):
        evaluate_campaign(orphan, profile(), seed=SEED)


# -- demand in the store -------------------------------------------------------------


def test_a_day_is_stamped_at_midnight_china_time():
    # 00:00 in Shanghai (UTC+8) is 16:00 UTC the day before.
    expected = datetime(2018, 4, 9, 16, tzinfo=UTC).timestamp() * 1000
    assert day_start_ms(date(2018, 4, 10)) == expected


def test_demand_points_carry_the_series_tags_and_fields():
    series = daily_demand(profile(), date(2018, 4, 10), date(2018, 4, 12), seed=SEED)
    points = demand_points(series)
    assert len(points) == 3
    point = points[1]
    assert point.measurement == "demand"
    assert dict(point.tags) == {"platform": "pdd", "crop": "garlic", "region": "zhongmou"}
    assert point.time_ms == day_start_ms(date(2018, 4, 11))
    assert point.fields == {
        "quantity_kg": float(series.quantity_kg[1]),
        "orders": int(series.orders[1]),
        "price": float(series.price_cny_per_kg[1]),
    }
    assert isinstance(point.fields["orders"], int)


def test_demand_round_trips_through_a_real_store(embedded_store):
    series = daily_demand(profile(), date(2018, 1, 1), date(2018, 12, 31), seed=SEED)
    points = demand_points(series)
    assert write_demand(embedded_store, points, batch=100) == 365
    assert write_demand(embedded_store, points) == 365  # idempotent: stored once
    back = embedded_store.query_points(
        "demand",
        day_start_ms(date(2018, 1, 1)),
        day_start_ms(date(2019, 1, 1)),
        tags={"platform": "pdd", "crop": "garlic"},
    )
    assert back == points


class _RecordingStore:
    """A store that records batch sizes and rejects points with negative quantities."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def write(self, points):
        self.batches.append(len(points))
        result = WriteResult()
        for point in points:
            if point.fields["quantity_kg"] < 0:
                result.rejected.append(Rejected(point, "negative"))
            else:
                result.written += 1
        return result


def _point(day: int, quantity_kg: float = 1.0) -> Point:
    tags = {"platform": "pdd", "crop": "garlic", "region": "zhongmou"}
    fields = {"quantity_kg": quantity_kg, "orders": 1, "price": 6.0}
    return Point("demand", tags, fields, day_start_ms(date(2018, 1, 1) + timedelta(days=day)))


def test_write_demand_writes_in_batches():
    store = _RecordingStore()
    assert write_demand(store, (_point(d) for d in range(12)), batch=5) == 12  # type: ignore[arg-type]
    assert store.batches == [5, 5, 2]


def test_write_demand_raises_when_the_store_rejects_a_point():
    store = _RecordingStore()
    points = [_point(d) for d in range(6)] + [_point(6, -1.0)] + [_point(d) for d in range(7, 12)]
    with pytest.raises(DemandRejected, match="rejected 1 demand point") as caught:
        write_demand(store, points, batch=5)  # type: ignore[arg-type]
    assert caught.value.written == 9
    assert caught.value.rejected[0].point == points[6]
    assert store.batches == [5, 5]  # stops at the failing batch


def test_write_demand_raises_when_a_real_store_rejects_a_point(embedded_store):
    bad = _point(0, float("nan"))
    with pytest.raises(DemandRejected, match="non-finite"):
        write_demand(embedded_store, [bad])
