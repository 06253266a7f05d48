"""Readings → store points: one point per device and sample time, one field per sensor."""

from __future__ import annotations

from collections.abc import Iterable

from agrimatch.contract.telemetry import Reading
from agrimatch.contract.topics import DeviceAddress
from agrimatch.store import Point

TELEMETRY_MEASUREMENT = "telemetry"


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
