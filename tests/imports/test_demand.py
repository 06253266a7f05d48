"""Importing platform demand history: days into the store as the simulator writes them, weeks
spread over their days, campaigns and new platforms into the registry."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from agrimatch.registry import Platform, list_campaigns
from agrimatch.store.measurements import china_day_start_ms
from forecasting.campaign_uplift import estimate_uplifts
from forecasting.campaigns import HANGOVER_DAYS
from forecasting.chain_data import campaigns_frame
from forecasting.demand_data import daily_demand_frame
from forecasting.imports import import_demand
from forecasting.imports.demand import DEFAULT_CAMPAIGN_LEAD_DAYS
from tests.imports.conftest import count, csv

HEADER = "platform,crop,region,day,quantity_kg,orders,price_cny_per_kg"
START = date(2024, 6, 10)  # a Monday


def _import(sessions, store, text, **options):
    with sessions.begin() as session:
        return import_demand(session, store, csv(text), **options)


def _frame(store):
    return daily_demand_frame(store, 0, china_day_start_ms(date(2030, 1, 1)))


def _history(campaign_uplift=3.0, hangover=0.2, campaign="618"):
    """Four weeks at 100 kg a day, a 3-day campaign, two weeks of the forecaster's dip."""
    lines = ["platform,crop,region,day,quantity_kg,orders,price_cny_per_kg,campaign"]
    for n in range(-28, 3 + HANGOVER_DAYS):
        day = START + timedelta(days=n)
        if n < 0:
            kg, flag = 100.0, ""
        elif n < 3:
            kg, flag = 100.0 * campaign_uplift, campaign
        else:
            kg, flag = 100.0 * (1 - hangover * math.exp(-(n - 3) / (HANGOVER_DAYS / 3))), ""
        lines.append(f"pdd,garlic,zhongmou,{day},{kg:.6f},{round(kg / 2)},6.5,{flag}")
    return "\n".join(lines) + "\n"


def test_daily_rows_read_back_from_the_store_as_the_same_daily_demand(with_farms, embedded_store):
    text = f"""\
        {HEADER}
        pdd,garlic,zhongmou,2024-06-01,5200,830,6.4
        pdd,garlic,zhongmou,2024-06-02,4800.5,790,6.6
        meituan,garlic,zhongmou,2024-06-01,1200,150,7
    """
    report = _import(with_farms, embedded_store, text)
    assert report.written and report.counts["demand days"] == 3
    frame = _frame(embedded_store)
    rows = [tuple(r) for r in frame.itertuples(index=False)]
    assert rows == [
        ("meituan", "garlic", "zhongmou", date(2024, 6, 1), 1200.0, 150.0, 7.0),
        ("pdd", "garlic", "zhongmou", date(2024, 6, 1), 5200.0, 830.0, 6.4),
        ("pdd", "garlic", "zhongmou", date(2024, 6, 2), 4800.5, 790.0, 6.6),
    ]


def test_a_day_is_stamped_at_midnight_in_china_with_integer_orders(with_farms, embedded_store):
    _import(with_farms, embedded_store, f"{HEADER}\npdd,garlic,zhongmou,2024-06-01,5200,830,6.4\n")
    [point] = embedded_store.query_points("demand", 0, 2**42)
    assert point.time_ms == china_day_start_ms(date(2024, 6, 1))
    assert point.tags == {"platform": "pdd", "crop": "garlic", "region": "zhongmou"}
    assert point.fields == {"quantity_kg": 5200.0, "orders": 830, "price": 6.4}
    assert isinstance(point.fields["orders"], int)


def test_a_week_is_spread_evenly_over_its_seven_days(with_farms, embedded_store):
    text = """\
        platform,crop,region,week,quantity_kg,orders,price_cny_per_kg
        pdd,garlic,zhongmou,2024-06-10,7000,52,6.0
    """
    assert _import(with_farms, embedded_store, text).counts["demand days"] == 7
    frame = _frame(embedded_store)
    assert list(frame["day"]) == [START + timedelta(days=n) for n in range(7)]
    assert list(frame["quantity_kg"]) == [1000.0] * 7
    assert list(frame["orders"]) == [8, 8, 8, 7, 7, 7, 7]  # 52 orders, whole, first days first
    assert set(frame["price_cny_per_kg"]) == {6.0}


def test_a_week_not_given_by_its_monday_is_a_bad_row_naming_the_monday(with_farms, embedded_store):
    text = "platform,crop,region,week,quantity_kg,orders,price_cny_per_kg\n"
    text += "pdd,garlic,zhongmou,2024-06-12,7000,52,6.0\n"
    [bad] = _import(with_farms, embedded_store, text).bad_rows
    assert bad.column == "week" and "is a Wednesday" in bad.reason and "2024-06-10" in bad.reason


def test_a_row_with_a_day_and_a_week_is_a_bad_row(with_farms, embedded_store):
    text = "platform,crop,region,day,week,quantity_kg,orders,price_cny_per_kg\n"
    text += "pdd,garlic,zhongmou,2024-06-10,2024-06-10,7000,52,6.0\n"
    [bad] = _import(with_farms, embedded_store, text).bad_rows
    assert bad.column == "week" and "give one of them" in bad.reason


def test_a_day_given_twice_or_inside_a_week_given_is_a_bad_row(with_farms, embedded_store):
    text = """\
        platform,crop,region,day,week,quantity_kg,orders,price_cny_per_kg
        pdd,garlic,zhongmou,,2024-06-10,7000,52,6.0
        pdd,garlic,zhongmou,2024-06-20,,100,5,6.0
        pdd,garlic,zhongmou,2024-06-20,,100,5,6.0
        pdd,garlic,zhongmou,2024-06-12,,100,5,6.0
        meituan,garlic,zhongmou,2024-06-12,,100,5,6.0
    """
    repeated, inside = _import(with_farms, embedded_store, text).bad_rows
    assert repeated.line == 4 and "repeats line 3's" in repeated.reason
    assert inside.line == 5 and "overlaps line 2's week 2024-06-10" in inside.reason
    assert embedded_store.query_points("demand", 0, 2**42) == []


def test_bad_cells_are_reported_each_with_its_column_and_nothing_is_stored(
    with_farms, embedded_store
):
    text = f"""\
        {HEADER}
        pdd,garlic,zhongmou,2024-06-01,-5,1.5,0
        pdd,rice,zhongmou,2024-06-02,5,1,6
    """
    report = _import(with_farms, embedded_store, text)
    assert [(bad.line, bad.column) for bad in report.bad_rows] == [
        (2, "quantity_kg"),
        (2, "orders"),
        (2, "price_cny_per_kg"),
        (3, "crop"),
    ]
    assert "not a whole number" in report.bad_rows[1].reason
    assert embedded_store.query_points("demand", 0, 2**42) == []


def test_a_region_not_in_the_registry_is_a_bad_row_saying_to_import_farms_first(
    with_farms, embedded_store
):
    text = f"{HEADER}\npdd,garlic,korla,2024-06-01,5200,830,6.4\n"
    [bad] = _import(with_farms, embedded_store, text).bad_rows
    assert bad.column == "region" and "import farms first" in bad.reason


def test_a_platform_not_in_the_registry_is_created_named_as_given(with_farms, embedded_store):
    text = f"""\
        {HEADER},platform_name
        pdd,garlic,zhongmou,2024-06-01,5200,830,6.4,Pinduoduo
        meituan,garlic,zhongmou,2024-06-01,1200,150,7,
    """
    assert _import(with_farms, embedded_store, text).counts["platforms (new)"] == 2
    platforms = count(
        with_farms,
        lambda s: [(p.id, p.name, p.campaign_lead_days) for p in s.scalars(select(Platform))],
    )
    assert sorted(platforms) == [
        ("meituan", "meituan", DEFAULT_CAMPAIGN_LEAD_DAYS),
        ("pdd", "Pinduoduo", DEFAULT_CAMPAIGN_LEAD_DAYS),
    ]


def test_campaign_days_become_a_history_campaign_with_its_measured_uplift_and_hangover(
    with_farms, embedded_store
):
    report = _import(with_farms, embedded_store, _history(3.0, 0.2))
    assert report.counts["campaigns (history)"] == 1
    assert "uplift 3.00× over 28 days before, hangover 20%" in report.notes[0]
    with with_farms() as session:
        [campaign] = list_campaigns(session)
    assert (campaign.platform_id, campaign.crop, campaign.region_id) == (
        "pdd",
        "garlic",
        "zhongmou",
    )
    assert (campaign.start_on, campaign.end_on, campaign.source) == (
        START,
        START + timedelta(days=2),
        "history",
    )
    assert campaign.uplift == pytest.approx(3.0, rel=1e-6)
    assert campaign.hangover == pytest.approx(0.2, abs=1e-6)
    assert campaign.volume_kg == pytest.approx(900.0) and campaign.absorbed_kg is None


def test_the_forecasters_uplift_estimate_learns_from_the_imported_campaigns(
    with_farms, embedded_store
):
    _import(with_farms, embedded_store, _history(5.0, 0.2))
    with with_farms() as session:
        history = campaigns_frame(session)
    estimate = estimate_uplifts(history).for_campaign("pdd", "garlic")
    assert estimate.n_campaigns == 1 and 2.5 < estimate.uplift < 5.0  # the prior 2.5 moved up


def test_a_campaign_without_days_before_it_is_recorded_with_uplift_1(with_farms, embedded_store):
    text = f"{HEADER},campaign\npdd,garlic,zhongmou,2024-06-18,900,80,6,1\n"
    report = _import(with_farms, embedded_store, text)
    assert "uplift recorded as 1.0" in report.notes[0]
    with with_farms() as session:
        [campaign] = list_campaigns(session)
    assert (campaign.uplift, campaign.hangover, campaign.volume_kg) == (1.0, 0.0, 900.0)


def test_a_campaign_is_measured_against_days_an_earlier_import_stored(with_farms, embedded_store):
    lines = _history(3.0, 0.0).splitlines()
    before, rest = lines[:29], [lines[0], *lines[29:]]  # the header and four weeks, then the rest
    _import(with_farms, embedded_store, "\n".join(before) + "\n")
    _import(with_farms, embedded_store, "\n".join(rest) + "\n")
    with with_farms() as session:
        [campaign] = list_campaigns(session)
    assert campaign.uplift == pytest.approx(3.0, rel=1e-6)


def test_a_week_row_in_a_campaign_marks_all_its_days(with_farms, embedded_store):
    text = """\
        platform,crop,region,week,quantity_kg,orders,price_cny_per_kg,campaign
        pdd,garlic,zhongmou,2024-06-10,7000,52,6.0,double-11
    """
    _import(with_farms, embedded_store, text)
    with with_farms() as session:
        [campaign] = list_campaigns(session)
    assert (campaign.start_on, campaign.end_on) == (START, START + timedelta(days=6))


def test_a_dry_run_stores_no_demand_and_records_no_platform_or_campaign(with_farms, embedded_store):
    report = _import(with_farms, embedded_store, _history(), dry_run=True)
    assert report.ok and not report.written
    assert report.counts == {
        "demand days": 28 + 3 + HANGOVER_DAYS,
        "platforms (new)": 1,
        "campaigns (history)": 1,
    }
    assert embedded_store.query_points("demand", 0, 2**42) == []
    assert count(with_farms, lambda s: list(s.scalars(select(Platform)))) == []
    with with_farms() as session:
        assert list_campaigns(session) == []


def test_importing_the_same_demand_twice_leaves_the_same_points_and_campaigns(
    with_farms, embedded_store
):
    _import(with_farms, embedded_store, _history())
    points = embedded_store.query_points("demand", 0, 2**42)
    with with_farms() as session:
        campaigns = [
            (c.id, c.start_on, c.end_on, c.uplift, c.hangover) for c in list_campaigns(session)
        ]
    assert _import(with_farms, embedded_store, _history()).written
    assert embedded_store.query_points("demand", 0, 2**42) == points
    with with_farms() as session:
        again = [
            (c.id, c.start_on, c.end_on, c.uplift, c.hangover) for c in list_campaigns(session)
        ]
    assert again == campaigns
