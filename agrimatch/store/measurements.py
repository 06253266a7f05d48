"""The store's schema: measurements, their tags, and readings → telemetry points.

``telemetry`` has tags farm, field, device and one field per sensor;
``demand`` has tags platform, crop, region and fields quantity_kg, orders,
price. Ingest and the simulator's backfill both build points here, so the
schema lives once.
"""

from __future__ import annotations

from collections.abc import Iterable

from agrimatch.contract.telemetry import Reading
from agrimatch.contract.topics import DeviceAddress
from agrimatch.store.port import Point

TELEMETRY_MEASUREMENT = "telemetry"
DEMAND_MEASUREMENT = "demand"


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
