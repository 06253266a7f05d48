"""Observed platform demand out of the telemetry store, as daily and weekly frames.

This is the I/O edge of demand forecasting: everything after it works on
frames. A ``demand`` point is one day of one series (tags platform, crop,
region; fields quantity_kg, orders, price in CNY per kg), stamped at 00:00
Asia/Shanghai, the day a platform reports sales for; the day is read back in
that time zone so it never slips to the previous UTC date.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from agrimatch.store.measurements import DEMAND_MEASUREMENT
from agrimatch.store.port import TelemetryStore

SERIES_KEYS = ("platform", "crop", "region")
DAILY_DEMAND_COLUMNS = (*SERIES_KEYS, "day", "quantity_kg", "orders", "price_cny_per_kg")
WEEKLY_DEMAND_COLUMNS = (
    *SERIES_KEYS,
    "week",  # the Monday, datetime.date
    "quantity_kg",
    "orders",
    "price_cny_per_kg",  # quantity-weighted mean over the week's days
    "days_reported",
)
DAYS_PER_WEEK = 7

_CHINA = ZoneInfo("Asia/Shanghai")


def daily_demand_frame(
    store: TelemetryStore,
    start_ms: int,
    end_ms: int,
    tags: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Daily demand with ``start_ms <= time < end_ms`` (optionally filtered by ``tags``).

    One row per (platform, crop, region, day), sorted that way, with the columns
    of :data:`DAILY_DEMAND_COLUMNS`; ``day`` is a ``datetime.date`` in China's
    time zone. A point missing a field gives NaN there; points without the
    three series tags are skipped (they belong to no series).
    """
    rows = []
    for point in store.query_points(DEMAND_MEASUREMENT, start_ms, end_ms, tags):
        if not all(key in point.tags for key in SERIES_KEYS):
            continue
        moment = datetime.fromtimestamp(point.time_ms / 1000, tz=UTC).astimezone(_CHINA)
        rows.append(
            (
                point.tags["platform"],
                point.tags["crop"],
                point.tags["region"],
                moment.date(),
                _number(point.fields.get("quantity_kg")),
                _number(point.fields.get("orders")),
                _number(point.fields.get("price")),
            )
        )
    frame = pd.DataFrame(rows, columns=list(DAILY_DEMAND_COLUMNS))
    frame = frame.astype({"quantity_kg": float, "orders": float, "price_cny_per_kg": float})
    return frame.sort_values([*SERIES_KEYS, "day"], ignore_index=True)


def weekly(frame: pd.DataFrame, min_days_reported: int = DAYS_PER_WEEK) -> pd.DataFrame:
    """Daily demand summed into weeks starting on Monday.

    ``quantity_kg`` and ``orders`` are sums; the price is weighted by quantity
    (what a kilogram actually sold for that week). Weeks with fewer than
    ``min_days_reported`` days are dropped, because a partial week's sum looks
    like a demand collapse to a model (the default keeps whole weeks only; a
    gap then stays a gap rather than a low value).
    """
    if not 1 <= min_days_reported <= DAYS_PER_WEEK:
        raise ValueError(f"min_days_reported must be 1..7, got {min_days_reported}")
    if frame.empty:
        return pd.DataFrame(columns=list(WEEKLY_DEMAND_COLUMNS))
    days = pd.to_datetime(frame["day"])
    work = frame.assign(
        week=(days - pd.to_timedelta(days.dt.day_of_week, unit="D")).dt.date,
        revenue_cny=frame["quantity_kg"] * frame["price_cny_per_kg"],
        priced_kg=frame["quantity_kg"].where(frame["price_cny_per_kg"].notna()),
    )
    grouped = work.groupby([*SERIES_KEYS, "week"], sort=True)
    out = grouped.agg(
        quantity_kg=("quantity_kg", "sum"),
        orders=("orders", "sum"),
        revenue_cny=("revenue_cny", "sum"),
        priced_kg=("priced_kg", "sum"),
        days_reported=("day", "nunique"),
    ).reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["price_cny_per_kg"] = np.where(
            out["priced_kg"] > 0, out["revenue_cny"] / out["priced_kg"], np.nan
        )
    out = out[out["days_reported"] >= min_days_reported]
    return out[list(WEEKLY_DEMAND_COLUMNS)].reset_index(drop=True)


def _number(value: object) -> float:
    # Fields are typed in the store, but a platform's integer price must not become NaN.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("nan")
    return float(value)
