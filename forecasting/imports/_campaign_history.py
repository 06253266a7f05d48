"""Campaigns in a platform's sales history: which days, and what they did to demand. Pure.

A campaign is a run of consecutive days of one series (platform, crop,
region) flagged as campaign days with the same label. What it did is
measured against the days around it, as the forecaster models it
(:mod:`forecasting.campaigns`: demand times ``uplift`` while it runs, then a
dip of ``hangover`` on the next day fading over two weeks):

* **uplift**: the campaign days' mean kg over the mean kg of the
  :data:`BASELINE_DAYS` days before its start that are not campaign days
  themselves. Without such days (or when they sold nothing) the uplift is
  1.0, "no measured effect", rather than a guess; it is kept above 0
  (:data:`MIN_UPLIFT`), as the registry requires.
* **hangover**: the first-day dip that best explains the
  :data:`~forecasting.campaigns.HANGOVER_DAYS` days after the end. Each
  day's shortfall against the baseline, ``1 - kg / baseline``, is fitted by
  least squares to ``hangover * exp(-t / tau)`` (t = 0 the day after, tau a
  third of the window, the forecaster's fade): ``sum(dip * w) / sum(w * w)``
  with ``w = exp(-t / tau)``. Clipped to 0..:data:`MAX_HANGOVER`; 0 without a
  baseline or days after.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import date, timedelta

from forecasting.campaigns import HANGOVER_DAYS

BASELINE_DAYS = 28
MIN_UPLIFT = 0.01  # a campaign that sold nothing still needs a positive multiplier
MAX_HANGOVER = 0.9  # the registry wants < 1; a dip that deep is a gap in the data
_FADE_TAU_DAYS = HANGOVER_DAYS / 3  # forecasting.campaigns: 95 % of the dip gone by the end
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class CampaignEffect:
    """What one campaign did: ``volume_kg`` sold while it ran, its ``uplift`` and
    ``hangover``, and how many baseline days stood behind them (0: none, uplift 1.0)."""

    uplift: float
    hangover: float
    volume_kg: float
    baseline_kg_per_day: float | None
    baseline_days: int


def campaign_runs(labels: Mapping[date, str]) -> list[tuple[date, date, str]]:
    """(start, end, label) of each run of consecutive days with the same label, in order.

    ``labels`` maps each campaign day to its label ('' when unlabelled).
    """
    runs: list[tuple[date, date, str]] = []
    for day in sorted(labels):
        label = labels[day]
        if runs and runs[-1][1] + _DAY == day and runs[-1][2] == label:
            runs[-1] = (runs[-1][0], day, label)
        else:
            runs.append((day, day, label))
    return runs


def measure_campaign(
    daily_kg: Mapping[date, float], campaign_days: Set[date], start: date, end: date
) -> CampaignEffect:
    """The effect of the campaign ``start..end`` on the series ``daily_kg`` (see the module
    docstring). ``campaign_days`` are all the series' campaign days, kept out of baselines."""
    running = [daily_kg[d] for d in _days(start, end) if d in daily_kg]
    volume_kg = float(sum(running))
    before = [
        daily_kg[d]
        for d in _days(start - BASELINE_DAYS * _DAY, start - _DAY)
        if d in daily_kg and d not in campaign_days
    ]
    baseline = sum(before) / len(before) if before else 0.0
    if baseline <= 0.0 or not running:
        return CampaignEffect(1.0, 0.0, volume_kg, None, 0)
    uplift = max(MIN_UPLIFT, (volume_kg / len(running)) / baseline)
    weighted_dip, weight_squared = 0.0, 0.0
    for t in range(HANGOVER_DAYS):
        day = end + (t + 1) * _DAY
        if day in daily_kg and day not in campaign_days:
            weight = math.exp(-t / _FADE_TAU_DAYS)
            weighted_dip += (1.0 - daily_kg[day] / baseline) * weight
            weight_squared += weight * weight
    hangover = weighted_dip / weight_squared if weight_squared else 0.0
    return CampaignEffect(
        uplift=uplift,
        hangover=min(MAX_HANGOVER, max(0.0, hangover)),
        volume_kg=volume_kg,
        baseline_kg_per_day=baseline,
        baseline_days=len(before),
    )


def _days(first: date, last: date) -> list[date]:
    return [first + n * _DAY for n in range((last - first).days + 1)]
