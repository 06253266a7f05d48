"""Campaigns found in sales history, and what they did to demand (pure)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from forecasting.campaigns import HANGOVER_DAYS
from forecasting.imports._campaign_history import campaign_runs, measure_campaign

START = date(2024, 6, 10)


def _days(first: date, n: int) -> list[date]:
    return [first + timedelta(days=k) for k in range(n)]


def _series(hangover: float) -> dict[date, float]:
    """100 kg a day for four weeks, a 3-day campaign at 300, then the forecaster's dip."""
    kg = {day: 100.0 for day in _days(START - timedelta(days=28), 28)}
    kg |= {day: 300.0 for day in _days(START, 3)}
    tau = HANGOVER_DAYS / 3
    after = _days(START + timedelta(days=3), HANGOVER_DAYS)
    kg |= {day: 100.0 * (1 - hangover * math.exp(-t / tau)) for t, day in enumerate(after)}
    return kg


def test_consecutive_days_with_one_label_are_one_campaign_and_a_new_label_starts_another():
    labels = dict.fromkeys(_days(START, 3), "618") | dict.fromkeys(
        _days(START + timedelta(3), 2), "x"
    )
    labels[START + timedelta(days=7)] = "x"
    assert campaign_runs(labels) == [
        (START, START + timedelta(days=2), "618"),
        (START + timedelta(days=3), START + timedelta(days=4), "x"),
        (START + timedelta(days=7), START + timedelta(days=7), "x"),
    ]


def test_the_uplift_is_the_campaign_days_mean_over_the_four_weeks_before():
    effect = measure_campaign(_series(0.2), set(_days(START, 3)), START, START + timedelta(2))
    assert effect.uplift == pytest.approx(3.0) and effect.volume_kg == 900.0
    assert (effect.baseline_kg_per_day, effect.baseline_days) == (100.0, 28)


def test_the_hangover_is_the_first_day_dip_of_the_forecasters_fade():
    effect = measure_campaign(_series(0.2), set(_days(START, 3)), START, START + timedelta(2))
    assert effect.hangover == pytest.approx(0.2)


def test_earlier_campaign_days_are_kept_out_of_the_baseline():
    kg = _series(0.0) | {START - timedelta(days=5): 1000.0}
    campaign_days = set(_days(START, 3)) | {START - timedelta(days=5)}
    effect = measure_campaign(kg, campaign_days, START, START + timedelta(2))
    assert effect.uplift == pytest.approx(3.0) and effect.baseline_days == 27


def test_without_days_before_it_a_campaign_has_uplift_1_and_no_hangover():
    kg = {day: 300.0 for day in _days(START, 3)} | {START + timedelta(days=3): 50.0}
    effect = measure_campaign(kg, set(_days(START, 3)), START, START + timedelta(2))
    assert (effect.uplift, effect.hangover, effect.baseline_days) == (1.0, 0.0, 0)
    assert effect.volume_kg == 900.0


def test_a_campaign_that_sold_nothing_keeps_a_positive_uplift_and_a_dip_below_1():
    kg = _series(0.0) | dict.fromkeys(_days(START, 3), 0.0)
    kg |= dict.fromkeys(_days(START + timedelta(days=3), HANGOVER_DAYS), 0.0)
    effect = measure_campaign(kg, set(_days(START, 3)), START, START + timedelta(2))
    assert 0 < effect.uplift < 0.1 and effect.hangover < 1
