"""Demand series into the telemetry store, until platforms push demand through the API.

A day's demand is one point (built by the kernel's
:func:`agrimatch.store.measurements.demand_point`, which the CSV demand import
uses too): measurement ``demand``, tags ``platform``,
``crop``, ``region``; fields ``quantity_kg`` (float), ``orders`` (integer)
and ``price`` (float, CNY per kg); stamped at the start of the day in
China's time zone (00:00 Asia/Shanghai), in UTC milliseconds, because that is
the day a platform reports sales for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from itertools import islice

from agrimatch.store.measurements import DEMAND_MEASUREMENT, china_day_start_ms, demand_point
from agrimatch.store.port import Point, Rejected, StoreError, TelemetryStore
from firmware_sim.market.demand import DemandSeries

MEASUREMENT = DEMAND_MEASUREMENT


class DemandRejected(StoreError):
    """The store refused demand points; ``rejected`` says which and why."""

    def __init__(self, rejected: Sequence[Rejected], written: int) -> None:
        self.rejected = list(rejected)
        self.written = written
        first = self.rejected[0]
        super().__init__(
            f"store rejected {len(self.rejected)} demand point(s) after writing {written}; "
            f"first: {dict(first.point.tags)} at {first.point.time_ms}: {first.reason}"
        )


def day_start_ms(day: date) -> int:
    """00:00 of ``day`` in Asia/Shanghai, as UTC epoch milliseconds."""
    return china_day_start_ms(day)


def demand_points(series: DemandSeries) -> list[Point]:
    """One ``demand`` point per day of ``series`` (the kernel's :func:`demand_point`)."""
    return [
        demand_point(
            series.platform,
            series.crop,
            series.region,
            day,
            quantity_kg=float(quantity),
            orders=int(orders),
            price_cny_per_kg=float(price),
        )
        for day, quantity, orders, price in zip(
            series.days,
            series.quantity_kg,
            series.orders,
            series.price_cny_per_kg,
            strict=True,
        )
    ]


def write_demand(store: TelemetryStore, points: Iterable[Point], batch: int = 5000) -> int:
    """Write ``points`` in batches of ``batch``; returns how many were written.

    Raises :class:`DemandRejected` after the first batch with a refused point
    (batches before it stay written; writing them again is harmless, points
    are idempotent). Store errors such as
    :class:`~agrimatch.store.port.StoreUnavailable` propagate unchanged.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    written = 0
    iterator = iter(points)
    while chunk := list(islice(iterator, batch)):
        result = store.write(chunk)
        written += result.written
        if result.rejected:
            raise DemandRejected(result.rejected, written)
    return written
