"""The I/O edge of feature engineering: store aggregates → the daily per-field frame.

One call, four aggregate queries (daily minimum and maximum of the air
temperature, daily means of the other sensors, daily rain sums per device),
each bucketed by day and grouped by farm and field, so the cost does not
grow with the number of fields. Everything after that is pure (see
:mod:`forecasting.features`).

Days are China Standard Time days (UTC+8, midnight to midnight), the
calendar days the farms count in. Their boundary falls in the late evening
of local solar time across China's farming regions (21:45 in Korla, 23:35
in Zhongmou), well away from both the dawn minimum and the afternoon
maximum, so a node's min/max register read across midnight puts each
extreme in its own day. UTC days would split the nights of western China
at dawn and give each day two mornings to take its minimum from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from agrimatch.store.measurements import TELEMETRY_MEASUREMENT
from agrimatch.store.port import AggregateRow, Aggregation, TelemetryStore
from forecasting.frames import DAILY_FIELD_COLUMNS

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
UTC_OFFSET_MS = 8 * HOUR_MS  # China Standard Time
# W/m2 averaged over 24 h → MJ/m2/day: 86,400 s × 1e-6.
W_M2_TO_MJ_M2_DAY = 0.0864

# Sensor → daily column, for the sensors averaged over the day (every sample of every
# device of the field weighs the same).
_MEAN_COLUMNS: Mapping[str, str] = {
    "air_temp": "air_temp_mean_c",
    "air_rh": "air_rh_mean_pct",
    "solar_rad": "solar_rad_mj_m2",
    "soil_moisture_10cm": "soil_moisture_10cm_pct",
    "soil_moisture_30cm": "soil_moisture_30cm_pct",
    "soil_temp": "soil_temp_mean_c",
    "ndvi": "ndvi",
}
_KEY = ("farm", "field", "day")
# The day's extremes: a node's min/max register catches what happened between its
# readings; the spot readings count too (a node without the register, or a day the
# register missed).
_TMIN_SENSORS = ("air_temp", "air_temp_min")
_TMAX_SENSORS = ("air_temp", "air_temp_max")


def day_start_ms(day: date) -> int:
    """Epoch milliseconds of ``day`` 00:00 China Standard Time: a bound of a daily frame."""
    midnight_utc = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return midnight_utc - UTC_OFFSET_MS


def daily_field_frame(
    store: TelemetryStore,
    start_ms: int,
    end_ms: int,
    farms: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Daily per-field telemetry in ``[start_ms, end_ms)``, columns ``DAILY_FIELD_COLUMNS``.

    One row per (farm, field, day) with any telemetry; a day without any
    (an outage) has no row, and a sensor without readings that day is NaN.
    Air temperature gives the day's min, max and mean over all the field's
    devices; rain is summed per device and averaged over the devices that
    report it (every gauge measures the same rain); solar radiation's mean
    irradiance becomes the day's energy in MJ/m2. ``farms`` limits the query to
    those farms (one set of queries per farm); None reads every farm. Pass
    day-aligned bounds (:func:`day_start_ms`), or the first and last days are
    partial.
    """
    tag_sets: list[Mapping[str, str] | None] = (
        [None] if farms is None else [{"farm": farm} for farm in dict.fromkeys(farms)]
    )
    parts: list[pd.DataFrame] = []
    for tags in tag_sets:
        parts.append(_farm_days(store, start_ms, end_ms, tags))
    frame = pd.concat(parts, ignore_index=True) if parts else _empty()
    if frame.empty:
        return _empty()
    frame = frame.sort_values(list(_KEY), kind="stable").reset_index(drop=True)
    frame["day"] = [date.fromordinal(int(o)) for o in frame["day"]]
    return frame.loc[:, list(DAILY_FIELD_COLUMNS)]


def _farm_days(
    store: TelemetryStore, start_ms: int, end_ms: int, tags: Mapping[str, str] | None
) -> pd.DataFrame:
    """The daily rows of one tag filter (all farms, or one), ``day`` as a date ordinal."""

    def query(
        fields: Sequence[str], fn: Aggregation, group_by: Sequence[str]
    ) -> list[AggregateRow]:
        return store.aggregate(
            TELEMETRY_MEASUREMENT,
            fields,
            fn,
            start_ms,
            end_ms,
            every_ms=DAY_MS,
            group_by=group_by,
            tags=tags,
            offset_ms=-UTC_OFFSET_MS,
        )

    by_field = ("farm", "field")
    tmin_rows = query(_TMIN_SENSORS, Aggregation.MIN, by_field)
    tmax_rows = query(_TMAX_SENSORS, Aggregation.MAX, by_field)
    tmin = _extreme(tmin_rows, _TMIN_SENSORS, "air_temp_min_c", np.fmin)
    tmax = _extreme(tmax_rows, _TMAX_SENSORS, "air_temp_max_c", np.fmax)
    means = _rows_frame(query(list(_MEAN_COLUMNS), Aggregation.MEAN, by_field), _MEAN_COLUMNS)
    # Grouped by device too: a field with two gauges must not count its rain twice.
    rain_rows = query(["rain"], Aggregation.SUM, (*by_field, "device"))
    rain = _rows_frame(rain_rows, {"rain": "rain_mm"})
    if not rain.empty:
        rain = rain.groupby(list(_KEY), as_index=False)["rain_mm"].mean()

    frame = means
    for part in (tmin, tmax, rain):
        frame = frame.merge(part, on=list(_KEY), how="outer")
    if "solar_rad_mj_m2" in frame:
        frame["solar_rad_mj_m2"] = frame["solar_rad_mj_m2"] * W_M2_TO_MJ_M2_DAY
    for column in DAILY_FIELD_COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    # A day whose every sensor came back empty is no telemetry at all.
    values = [c for c in DAILY_FIELD_COLUMNS if c not in _KEY]
    return frame.dropna(subset=values, how="all")


def _extreme(
    rows: Sequence[AggregateRow], sensors: Sequence[str], column: str, pick: np.ufunc
) -> pd.DataFrame:
    """The day's extreme over ``sensors`` per field: ``pick`` is ``np.fmin`` or ``np.fmax``,
    which skip a sensor without readings that day (NaN only when none has any)."""
    frame = _rows_frame(rows, {s: s for s in sensors})
    extreme = pick.reduce(frame[list(sensors)].to_numpy(float), axis=1)
    return frame.drop(columns=list(sensors)).assign(**{column: extreme})


def _rows_frame(rows: Sequence[AggregateRow], columns: Mapping[str, str]) -> pd.DataFrame:
    """Aggregate rows as a frame keyed by farm, field, day ordinal (plus any other group tag)."""
    if not rows:
        return pd.DataFrame(columns=[*_KEY, *columns.values()])
    epoch_ordinal = date(1970, 1, 1).toordinal()
    records = []
    for row in rows:
        record: dict[str, object] = dict(row.group)
        record["day"] = epoch_ordinal + (row.bucket_ms + UTC_OFFSET_MS) // DAY_MS
        for name, column in columns.items():
            value = row.values.get(name)
            record[column] = np.nan if value is None else float(value)
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    return frame.astype({c: "float64" for c in columns.values()})


def empty_daily_frame() -> pd.DataFrame:
    """A daily per-field frame with no rows, typed as :func:`daily_field_frame`'s."""
    return _empty()


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in DAILY_FIELD_COLUMNS})
    return frame.astype({"farm": "object", "field": "object", "day": "object"})
