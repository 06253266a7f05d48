"""The store's schema: measurements, their tags, and readings → telemetry points.

``telemetry`` has tags farm, field, device and one field per sensor;
``demand`` has tags platform, crop, region and fields quantity_kg, orders,
price. Ingest, the simulator's backfill and the CSV imports all build points
here, so the schema lives once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from agrimatch.contract.telemetry import Reading
from agrimatch.contract.topics import DeviceAddress
from agrimatch.store.port import Point

TELEMETRY_MEASUREMENT = "telemetry"
DEMAND_MEASUREMENT = "demand"
_CHINA = ZoneInfo("Asia/Shanghai")


def readings_to_points(address: DeviceAddress, readings: Iterable[Reading]) -> list[Point]:
    """Group a device's readings by sample time into ``telemetry`` points.

    Later readings of the same sensor at the same time win, as they would in
    the store, so a pack that repeats a record is stored once.
    """
    by_time: dict[int, dict[str, float]] = {}
    for reading in readings:
        by_time.setdefault(reading.time_ms, {})[reading.sensor] = reading.value
    tags = {"farm": address.farm, "field": address.field, "device": address.device}
    return [
        Point(TELEMETRY_MEASUREMENT, tags, fields, time_ms)
        for time_ms, fields in sorted(by_time.items())
    ]


def china_day_start_ms(day: date) -> int:
    """00:00 of ``day`` in Asia/Shanghai, as UTC epoch milliseconds: a demand point's stamp."""
    # Through zoneinfo rather than a fixed +8 h: China kept summer time 1986-1991.
    midnight = datetime(day.year, day.month, day.day, tzinfo=_CHINA)
    return int(midnight.timestamp()) * 1000


def demand_point(
    platform: str,
    crop: str,
    region: str,
    day: date,
    *,
    quantity_kg: float,
    orders: int,
    price_cny_per_kg: float,
) -> Point:
    """One day of one platform's sales of a crop from a region, as a ``demand`` point.

    Stamped at the start of the day in China's time zone, the day a platform
    reports sales for; ``orders`` is an integer field, the others floats (the
    types must never change within a series, or InfluxDB refuses the point).
    """
    return Point(
        DEMAND_MEASUREMENT,
        {"platform": platform, "crop": crop, "region": region},
        {
            "quantity_kg": float(quantity_kg),
            "orders": int(orders),
            "price": float(price_cny_per_kg),
        },
        china_day_start_ms(day),
    )
