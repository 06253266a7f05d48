"""Telemetry read back for people: a field's newest day, and its readings in time buckets.

Both go through the store's ``aggregate`` (the port every adapter offers), so
the API never pulls raw points. Days are China Standard Time days, as the
forecaster counts them (:mod:`forecasting.telemetry_frames`), and times are
given in that zone.

**The newest day** of a field is found in two steps, so that the cost does
not grow with how long ago it was: per farm, one query counts readings in
30-day buckets over :data:`LATEST_LOOKBACK_DAYS`; then one query per distinct
newest bucket takes daily means inside it. Rain, a quantity "since the last
reading", is summed per device over the day and averaged over the devices
(every gauge of a field measures the same rain), as the forecaster does; the
other sensors are the day's means.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from agrimatch.contract.sensors import SENSORS
from agrimatch.store.measurements import TELEMETRY_MEASUREMENT
from agrimatch.store.port import AggregateRow, Aggregation, TelemetryStore
from forecasting.telemetry_frames import DAY_MS, HOUR_MS, UTC_OFFSET_MS

CHINA = timezone(timedelta(milliseconds=UTC_OFFSET_MS), "CST")
LATEST_LOOKBACK_DAYS = 730  # a field silent for two years has no "latest" day
EVERY_MS = {"1h": HOUR_MS, "6h": 6 * HOUR_MS, "1d": DAY_MS}
MAX_BUCKETS = 2000  # a chart has no use for more points than a screen has pixels
_COARSE_MS = 30 * DAY_MS
_RAIN = "rain"

FieldKey = tuple[str, str]  # (farm, field)


@dataclass(frozen=True, slots=True)
class LatestDay:
    """A field's newest day with telemetry: its start (00:00 China time) and values."""

    time: datetime
    readings: dict[str, float]


def china_time(epoch_ms: int) -> datetime:
    """Epoch milliseconds as an aware datetime in China Standard Time."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).astimezone(CHINA)


def latest_days(
    store: TelemetryStore, fields: Iterable[FieldKey], now_ms: int
) -> dict[FieldKey, LatestDay]:
    """The newest day of each of ``fields`` with any telemetry, within the lookback.

    Fields without any are left out.
    """
    by_farm: dict[str, set[str]] = defaultdict(set)
    for farm, field in fields:
        by_farm[farm].add(field)
    found: dict[FieldKey, LatestDay] = {}
    for farm, names in sorted(by_farm.items()):
        for bucket_ms, in_bucket in _newest_buckets(store, farm, names, now_ms).items():
            found.update(_newest_days(store, farm, in_bucket, bucket_ms))
    return found


def _newest_buckets(
    store: TelemetryStore, farm: str, fields: set[str], now_ms: int
) -> dict[int, set[str]]:
    """The newest 30-day bucket holding readings, for each field of ``farm`` that has any."""
    rows = store.aggregate(
        TELEMETRY_MEASUREMENT,
        list(SENSORS),
        Aggregation.COUNT,
        now_ms - LATEST_LOOKBACK_DAYS * DAY_MS,
        now_ms + DAY_MS,  # a device's clock may run a little ahead
        every_ms=_COARSE_MS,
        group_by=("field",),
        tags={"farm": farm},
        offset_ms=-UTC_OFFSET_MS,  # coarse buckets made of whole China days
    )
    newest: dict[str, int] = {}
    for row in rows:
        field = row.group["field"]
        if field in fields and any(row.values.values()):
            newest[field] = max(newest.get(field, row.bucket_ms), row.bucket_ms)
    buckets: dict[int, set[str]] = defaultdict(set)
    for field, bucket_ms in newest.items():
        buckets[bucket_ms].add(field)
    return buckets


def _newest_days(
    store: TelemetryStore, farm: str, fields: set[str], bucket_ms: int
) -> dict[FieldKey, LatestDay]:
    """Each field's newest day inside the 30-day bucket from ``bucket_ms``."""

    def daily(
        fn: Aggregation, sensors: Sequence[str], group_by: Sequence[str]
    ) -> list[AggregateRow]:
        return store.aggregate(
            TELEMETRY_MEASUREMENT,
            sensors,
            fn,
            bucket_ms,
            bucket_ms + _COARSE_MS,
            every_ms=DAY_MS,
            group_by=group_by,
            tags={"farm": farm},
            offset_ms=-UTC_OFFSET_MS,
        )

    means: dict[str, tuple[int, dict[str, float]]] = {}
    for row in daily(Aggregation.MEAN, [s for s in SENSORS if s != _RAIN], ("field",)):
        field = row.group["field"]
        values = {s: float(v) for s, v in row.values.items() if v is not None}
        if field in fields and values and row.bucket_ms >= means.get(field, (-1, {}))[0]:
            means[field] = (row.bucket_ms, values)
    rain: dict[tuple[str, int], list[float]] = defaultdict(list)
    for row in daily(Aggregation.SUM, [_RAIN], ("field", "device")):
        total = row.values.get(_RAIN)
        if total is not None:
            rain[(row.group["field"], row.bucket_ms)].append(float(total))
    days = {field: day for field, (day, _) in means.items()}
    for field, day_ms in rain:
        if field in fields and day_ms > days.get(field, -1):
            days[field] = day_ms
    found = {}
    for field, day_ms in days.items():
        readings = dict(means[field][1]) if field in means and means[field][0] == day_ms else {}
        if totals := rain.get((field, day_ms)):
            readings[_RAIN] = sum(totals) / len(totals)
        found[(farm, field)] = LatestDay(china_time(day_ms), dict(sorted(readings.items())))
    return found


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time bucket of a field's readings: its start and each sensor's mean (None: none)."""

    time: datetime
    values: dict[str, float | None]


def field_buckets(
    store: TelemetryStore,
    farm: str,
    field: str,
    sensors: Sequence[str],
    start_ms: int,
    end_ms: int,
    every_ms: int,
) -> list[Bucket]:
    """Mean readings of ``sensors`` of one field per bucket of ``every_ms`` in
    ``[start_ms, end_ms)``, oldest first; buckets without readings are left out.

    Buckets are aligned to China midnight, so a day, or a 6-hour block, is the farm's.
    """
    rows = store.aggregate(
        TELEMETRY_MEASUREMENT,
        sensors,
        Aggregation.MEAN,
        start_ms,
        end_ms,
        every_ms=every_ms,
        tags={"farm": farm, "field": field},
        offset_ms=-UTC_OFFSET_MS,
    )
    ordered = sorted(rows, key=lambda r: r.bucket_ms)
    return [Bucket(china_time(r.bucket_ms), {s: r.values.get(s) for s in sensors}) for r in ordered]
