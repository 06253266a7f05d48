"""The config a device receives: its sampling interval and its alert thresholds.

Published retained (QoS 1) on ``agrimatch/v1/{farm}/{field}/{device}/config``
as JSON, ``{"interval_s": 60.0, "thresholds": {"soil_moisture_10cm": {"min":
15.0, "max": 45.0}}}``. A device ignores keys it does not know, so the config
can grow; the interval bounds are the firmware's (1 s .. 1 day).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from agrimatch.contract.sensors import SENSORS

MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Threshold:
    """Alert bounds of one sensor; either may be open (None)."""

    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class ConfigMessage:
    """What a device is told to do."""

    interval_s: float
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The retained config payload (sensors sorted, so equal configs are equal bytes)."""
        thresholds = sorted(self.thresholds.items())
        doc = {
            "interval_s": self.interval_s,
            "thresholds": {s: {"min": t.min, "max": t.max} for s, t in thresholds},
        }
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def interval_problem(interval_s: float) -> str:
    """Why ``interval_s`` is no sampling interval a device accepts, or ``""``."""
    if not math.isfinite(interval_s) or not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S:
        return (
            f"interval_s must be within {MIN_INTERVAL_S:g}..{MAX_INTERVAL_S:g} s, "
            f"got {interval_s!r}"
        )
    return ""


def threshold_problem(sensor: str, threshold: Threshold) -> str:
    """Why ``threshold`` cannot apply to ``sensor``, or ``""``.

    The sensor must be a canonical one, the bounds finite, inside the sensor's
    physical range (a bound outside it could never fire) and ordered.
    """
    spec = SENSORS.get(sensor)
    if spec is None:
        return f"unknown sensor {sensor!r} (known: {', '.join(sorted(SENSORS))})"
    bounds = [("min", threshold.min), ("max", threshold.max)]
    for name, value in bounds:
        if value is None:
            continue
        if not math.isfinite(value):
            return f"{sensor} {name} must be a finite number, got {value!r}"
        if not spec.minimum <= value <= spec.maximum:
            return (
                f"{sensor} {name} = {value!r} {spec.unit} is outside the sensor's range "
                f"[{spec.minimum!r}, {spec.maximum!r}] {spec.unit}"
            )
    if threshold.min is not None and threshold.max is not None and threshold.min > threshold.max:
        return f"{sensor} min {threshold.min!r} is above max {threshold.max!r}"
    return ""
