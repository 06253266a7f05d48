"""Per-week calendar features for demand: festivals, season of the year, campaigns. Pure.

A week is named by its Monday (``datetime.date``) and runs Monday to Sunday.

Four festivals move online food demand in China: Spring Festival and
Mid-Autumn (gift buying in the weeks before, a courier stop after Spring
Festival) and the platforms' shopping days 618 (June 18) and Double 11
(November 11). The lunar dates come from China's official holiday calendar in
the ``holidays`` package, year by year; 618 and Double 11 are a fixed-date rule.
Because the lunar festivals wander by up to four weeks between years, the
features are distances in weeks to and from each festival, which is what lets
a model tell this year's festival week from last year's.

Campaigns (the registry's ``campaigns`` rows) are given as a frame with
:data:`CAMPAIGN_COLUMNS`; they become the share of a week a campaign runs, the
demand multiplier its ``uplift`` implies for the week, and the share of the
week in the dip after one ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from agrimatch.festivals import (
    FESTIVALS,
    LUNAR_FESTIVALS,
    festival_days,
)

CALENDAR_FEATURES: tuple[str, ...] = (
    *(f"weeks_to_{name}" for name in FESTIVALS),
    *(f"weeks_from_{name}" for name in FESTIVALS),
    *(f"{name}_in_week" for name in FESTIVALS),
    "week_of_year_sin",
    "week_of_year_cos",
)

CAMPAIGN_COLUMNS = ("platform", "crop", "region", "start_on", "end_on", "uplift")
CAMPAIGN_FEATURES = ("campaign_share", "campaign_multiplier", "post_campaign_share")
# Shoppers who stocked up during a campaign buy less for a while after it; two
# weeks is the window we watch for that dip (its size is left to the model).
POST_CAMPAIGN_DAYS = 14

_DAYS_PER_WEEK = 7
_WEEKS_PER_YEAR = 52
# Gift buying starts about a month before a lunar festival; after Spring Festival
# couriers stop for a week or two.
_WEEKS_BEFORE_LUNAR_FESTIVAL = 4
_WEEKS_AFTER_LUNAR_FESTIVAL = 2
_DAYS_PER_YEAR = 365.25
# Distances are capped at a year: beyond that the next festival says nothing new.
_MAX_WEEKS = 53.0


def last_year_lag_weeks(weeks: Iterable[date]) -> np.ndarray:
    """How many weeks back "the same week last year" lies, for each week (its Monday).

    52, except near Spring Festival and Mid-Autumn: a lunar festival falls up
    to four weeks earlier or later than the year before, so a week near it is
    compared with last year's week at the same distance from the festival
    (52 weeks plus the festival's shift, rounded to whole weeks). "Near" is
    the gift-buying month before the festival and the two weeks after it
    (the courier stop), widened by the shift, so that neither this year's week
    nor the week 52 back sits in a festival the other one misses.
    """
    mondays = [_as_date(week) for week in weeks]
    lags = np.full(len(mondays), float(_WEEKS_PER_YEAR))
    if not mondays:
        return lags.astype(int)
    years = range(min(m.year for m in mondays) - 1, max(m.year for m in mondays) + 2)
    midweek = np.array([m.toordinal() + 3 for m in mondays], dtype=float)
    for name in LUNAR_FESTIVALS:
        dated = {y: d for y in years if (d := festival_days(y).get(name)) is not None}
        for year, day in dated.items():
            before = dated.get(year - 1)
            if before is None:
                continue
            shift = round(((day - before).days - _WEEKS_PER_YEAR * _DAYS_PER_WEEK) / _DAYS_PER_WEEK)
            weeks_from_festival = (midweek - day.toordinal()) / _DAYS_PER_WEEK
            near = (weeks_from_festival > -(_WEEKS_BEFORE_LUNAR_FESTIVAL + abs(shift))) & (
                weeks_from_festival < _WEEKS_AFTER_LUNAR_FESTIVAL + abs(shift)
            )
            lags[near] = _WEEKS_PER_YEAR + shift
    return lags.astype(int)


def calendar_features(weeks: Iterable[date]) -> pd.DataFrame:
    """Calendar features of each week (its Monday), one row per week in the order given.

    Columns :data:`CALENDAR_FEATURES`:

    * ``weeks_to_<festival>``: days from the Monday to the next festival day on
      or after it, over 7 (so 0.43 = Wednesday of this week);
    * ``weeks_from_<festival>``: days since the last festival day before the
      Monday, over 7;
    * ``<festival>_in_week``: 1.0 when the festival day falls Monday to Sunday;
    * ``week_of_year_sin`` / ``_cos``: the week's mid-point on the annual circle,
      so the last week of December sits next to the first of January.

    Distances are capped at 53 weeks; NaN where the calendar has no date.
    """
    mondays = [_as_date(week) for week in weeks]
    columns: dict[str, np.ndarray] = {}
    if mondays:
        years = range(min(m.year for m in mondays) - 1, max(m.year for m in mondays) + 2)
        monday_days = np.array([m.toordinal() for m in mondays], dtype=float)
        for name in FESTIVALS:
            days = np.array(
                sorted(d.toordinal() for y in years if (d := festival_days(y).get(name))),
                dtype=float,
            )
            to_days, from_days = _distances(monday_days, days)
            columns[f"weeks_to_{name}"] = np.minimum(to_days / _DAYS_PER_WEEK, _MAX_WEEKS)
            columns[f"weeks_from_{name}"] = np.minimum(from_days / _DAYS_PER_WEEK, _MAX_WEEKS)
            columns[f"{name}_in_week"] = (to_days < _DAYS_PER_WEEK).astype(float)
        midweek = [m + timedelta(days=3) for m in mondays]
        angle = 2 * np.pi * np.array([d.timetuple().tm_yday - 1 for d in midweek]) / _DAYS_PER_YEAR
        columns["week_of_year_sin"] = np.sin(angle)
        columns["week_of_year_cos"] = np.cos(angle)
    frame = pd.DataFrame(columns, columns=list(CALENDAR_FEATURES), dtype=float)
    return frame.reset_index(drop=True)


def campaign_features(series_weeks: pd.DataFrame, campaigns: pd.DataFrame | None) -> pd.DataFrame:
    """Campaign features of each row of ``series_weeks`` (platform, crop, region, week).

    ``campaigns`` has :data:`CAMPAIGN_COLUMNS` (``start_on``/``end_on`` inclusive
    dates, ``uplift`` the demand multiplier while it runs); only a campaign of
    the row's own platform, crop and region acts. The result has the index of
    ``series_weeks`` and :data:`CAMPAIGN_FEATURES`:

    * ``campaign_share``: share of the week's days a campaign runs (capped at 1);
    * ``campaign_multiplier``: the week's demand multiplier the uplifts imply,
      ``1 + sum(days_running / 7 * (uplift - 1))`` (1 without a campaign;
      overlapping campaigns add, which is exact when they do not overlap);
    * ``post_campaign_share``: share of the week's days in the
      :data:`POST_CAMPAIGN_DAYS` after a campaign ended.
    """
    out = pd.DataFrame(
        {"campaign_share": 0.0, "campaign_multiplier": 1.0, "post_campaign_share": 0.0},
        index=series_weeks.index,
    )
    if campaigns is None or campaigns.empty or series_weeks.empty:
        return out
    missing = set(CAMPAIGN_COLUMNS) - set(campaigns.columns)
    if missing:
        raise ValueError(f"campaigns frame lacks columns {sorted(missing)}")
    keys = ["platform", "crop", "region"]
    rows = series_weeks[[*keys, "week"]].reset_index(names="_row")
    rows["_monday"] = [_as_date(w).toordinal() for w in rows["week"]]
    plans = campaigns[list(CAMPAIGN_COLUMNS)].copy()
    plans["_start"] = [_as_date(d).toordinal() for d in plans["start_on"]]
    plans["_end"] = [_as_date(d).toordinal() for d in plans["end_on"]]
    if (plans["_end"] < plans["_start"]).any():
        raise ValueError("a campaign ends before it starts")
    pairs = rows.merge(plans, on=keys, how="inner")
    if pairs.empty:
        return out
    monday = pairs["_monday"].to_numpy()
    sunday = monday + _DAYS_PER_WEEK - 1
    start = pairs["_start"].to_numpy()
    end = pairs["_end"].to_numpy()
    running_days = _overlap_days(monday, sunday, start, end)
    after_days = _overlap_days(monday, sunday, end + 1, end + POST_CAMPAIGN_DAYS)
    pairs = pairs.assign(
        running=running_days / _DAYS_PER_WEEK,
        excess=running_days / _DAYS_PER_WEEK * (pairs["uplift"].to_numpy(dtype=float) - 1.0),
        after=after_days / _DAYS_PER_WEEK,
    )
    sums = pairs.groupby("_row")[["running", "excess", "after"]].sum()
    out.loc[sums.index, "campaign_share"] = np.minimum(sums["running"].to_numpy(), 1.0)
    out.loc[sums.index, "campaign_multiplier"] = 1.0 + sums["excess"].to_numpy()
    # A week both in one campaign's dip and another's run counts as running.
    out.loc[sums.index, "post_campaign_share"] = np.clip(
        sums["after"].to_numpy(), 0.0, 1.0 - out.loc[sums.index, "campaign_share"].to_numpy()
    )
    return out


def _distances(points: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days from each point to the next event on or after it, and since the last before it."""
    if len(events) == 0:
        nan = np.full(len(points), np.nan)
        return nan, nan
    next_at = np.searchsorted(events, points, side="left")
    to_days = np.full(len(points), np.nan)
    has_next = next_at < len(events)
    to_days[has_next] = events[next_at[has_next]] - points[has_next]
    from_days = np.full(len(points), np.nan)
    has_last = next_at > 0
    from_days[has_last] = points[has_last] - events[next_at[has_last] - 1]
    return to_days, from_days


def _overlap_days(
    first: np.ndarray, last: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Days shared by [first, last] and [start, end], all inclusive day ordinals."""
    overlap = np.minimum(last, end) - np.maximum(first, start) + 1
    return np.clip(overlap, 0, None).astype(float)


def _as_date(value: object) -> date:
    # Weeks arrive as dates, pandas Timestamps or numpy datetimes depending on the frame.
    if isinstance(value, datetime):  # pandas Timestamps are datetimes too
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()
