"""Sensor faults at configurable rates, with the truth of which readings they touched. Pure.

Four kinds, as field sensors fail:

* **spike**: one reading far off (a loose connector, an EMI burst);
* **dropout**: one reading missing (the sensor did not answer in time);
* **stuck**: the sensor repeats the value it had when it froze, for hours;
* **drift**: a slowly growing offset (fouling, a drying electrode), for days.

Spikes and dropouts strike single readings independently; stuck and drift
spells are episodes of an alternating renewal process per device and sensor
(see :mod:`firmware_sim.device._processes`). Everything is a function of
``(seed, device, sensor, t)``, so the same reading is faulty in every run.

Faulty values stay within the contract's physical ranges (the sensor
saturates): they are plausible-but-wrong data for quality control to find,
not malformed messages for ingest to reject. At most one fault applies to a
reading, the first of dropout, stuck, spike, drift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from agrimatch.contract import SENSORS
from agrimatch.contract.telemetry import Reading
from firmware_sim import _noise
from firmware_sim.device._processes import DurationLaw, Episode, episode_at

DAY_S = 86_400.0
HOUR_S = 3600.0

ENVIRONMENT_SENSORS = (
    "soil_moisture_10cm",
    "soil_moisture_30cm",
    "soil_temp",
    "air_temp",
    "air_temp_min",
    "air_temp_max",
    "air_rh",
    "rain",
    "solar_rad",
    "leaf_wetness",
)
"""Sensors that measure the field; battery and radio readings are the device's own state."""

# One "typical error" per sensor: spikes are 3-8 of these, drift grows by up to one a day.
FAULT_SCALE = {
    "soil_moisture_10cm": 5.0,
    "soil_moisture_30cm": 5.0,
    "soil_temp": 2.0,
    "air_temp": 2.0,
    "air_temp_min": 2.0,
    "air_temp_max": 2.0,
    "air_rh": 8.0,
    "rain": 2.0,
    "solar_rad": 150.0,
    "leaf_wetness": 20.0,
    "battery": 0.2,
    "rsrp": 8.0,
    "sinr": 4.0,
    "latency": 100.0,
}
# Decimals the sensors report (as in firmware_sim.signals).
DIGITS = {"battery": 3, "soil_moisture_10cm": 2, "soil_moisture_30cm": 2, "soil_temp": 2}
DEFAULT_DIGITS = 1


class FaultKind(StrEnum):
    STUCK = "stuck"
    SPIKE = "spike"
    DRIFT = "drift"
    DROPOUT = "dropout"


@dataclass(frozen=True, slots=True)
class FaultRates:
    """How often each kind of fault strikes a sensor (of ``sensors``).

    Spike and dropout: chance per reading. Stuck and drift: onsets per sensor
    per day of healthy operation, with lognormal spell lengths around a median.
    The defaults give a 100-device fleet a handful of faulty readings an hour
    and a stuck or drifting sensor every few days.
    """

    spike_per_reading: float = 5e-4
    dropout_per_reading: float = 1e-3
    stuck_per_day: float = 1e-3
    stuck_median_h: float = 12.0
    drift_per_day: float = 5e-4
    drift_median_days: float = 7.0
    sensors: tuple[str, ...] = ENVIRONMENT_SENSORS

    def __post_init__(self) -> None:
        for name in ("spike_per_reading", "dropout_per_reading"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability")
        if self.stuck_per_day < 0 or self.drift_per_day < 0:
            raise ValueError("fault rates must not be negative")
        unknown = set(self.sensors) - set(SENSORS)
        if unknown:
            raise ValueError(f"unknown sensors: {sorted(unknown)}")

    @classmethod
    def none(cls) -> FaultRates:
        """No faults at all."""
        return cls(0.0, 0.0, 0.0, 12.0, 0.0, 7.0)

    @property
    def stuck_law(self) -> DurationLaw:
        median = self.stuck_median_h * HOUR_S
        return DurationLaw(median, 0.8, min(median, 600.0), min(30 * DAY_S, 20 * median))

    @property
    def drift_law(self) -> DurationLaw:
        median = self.drift_median_days * DAY_S
        return DurationLaw(median, 0.6, min(median, HOUR_S), min(300 * DAY_S, 10 * median))


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """Truth about one faulty reading: what the sensor should have said and what it said."""

    device: str
    sensor: str
    kind: FaultKind
    time_ms: int  # the reading's time as the device stamped it (joins with the store)
    true_time_ms: int  # when it was really sampled
    clean_value: float
    reported_value: float | None  # None: the reading is missing (dropout)
    onset_ms: int | None = None  # start of the stuck or drift spell
    offset: float | None = None  # reported minus clean, for a spike or a drift


StuckValue = Callable[[str, float], float | None]
"""``stuck_value(sensor, onset_s)``: the clean value the sensor froze at, if known."""


def apply_faults(
    seed: int,
    device: str,
    t_s: float,
    readings: Sequence[Reading],
    rates: FaultRates,
    stuck_value: StuckValue | None = None,
) -> tuple[list[Reading], list[FaultRecord]]:
    """The readings the faulty sensors report at ``t_s``, and the truth of each fault.

    ``readings`` are the clean readings at true time ``t_s`` (their order is
    kept; a dropout removes one). ``stuck_value`` gives the value a sensor froze
    at; without it (or when it returns None) a stuck sensor holds the current
    clean value.
    """
    t_ms = round(t_s * 1000)
    out: list[Reading] = []
    records: list[FaultRecord] = []
    for reading in readings:
        if reading.sensor not in rates.sensors:
            out.append(reading)
            continue
        fault = _fault_of(seed, device, reading, t_s, t_ms, rates, stuck_value)
        if fault is None:
            out.append(reading)
            continue
        kind, value, onset_s, offset = fault
        records.append(
            FaultRecord(
                device=device,
                sensor=reading.sensor,
                kind=kind,
                time_ms=reading.time_ms,
                true_time_ms=t_ms,
                clean_value=reading.value,
                reported_value=value,
                onset_ms=None if onset_s is None else round(onset_s * 1000),
                offset=offset,
            )
        )
        if value is not None:
            out.append(Reading(reading.sensor, reading.time_ms, value))
    return out, records


def _fault_of(
    seed: int,
    device: str,
    reading: Reading,
    t_s: float,
    t_ms: int,
    rates: FaultRates,
    stuck_value: StuckValue | None,
) -> tuple[FaultKind, float | None, float | None, float | None] | None:
    """(kind, reported value or None, onset, offset) of the fault on ``reading``, if any."""
    sensor = reading.sensor
    owner = f"{device}/{sensor}"
    scale = FAULT_SCALE.get(sensor, 1.0)

    if _noise.uniform(seed, "fault-dropout", owner, t_ms) < rates.dropout_per_reading:
        return FaultKind.DROPOUT, None, None, None

    stuck = episode_at(
        seed, "fault-stuck", owner, t_s, rates.stuck_per_day / DAY_S, rates.stuck_law
    )
    if stuck is not None:
        frozen = stuck_value(sensor, stuck.start_s) if stuck_value is not None else None
        value = saturate(sensor, reading.value if frozen is None else frozen)
        return FaultKind.STUCK, value, stuck.start_s, None

    if _noise.uniform(seed, "fault-spike", owner, t_ms) < rates.spike_per_reading:
        size = (3.0 + 5.0 * _noise.uniform(seed, "spike-size", owner, t_ms)) * scale
        sign = 1.0 if _noise.uniform(seed, "spike-sign", owner, t_ms) < 0.5 else -1.0
        value = saturate(sensor, reading.value + sign * size)
        if value == reading.value:  # saturated at the range's edge: spike the other way
            sign = -sign
            value = saturate(sensor, reading.value + sign * size)
        return FaultKind.SPIKE, value, None, round(value - reading.value, 6)

    drift = episode_at(
        seed, "fault-drift", owner, t_s, rates.drift_per_day / DAY_S, rates.drift_law
    )
    if drift is not None:
        slope = _drift_slope_per_day(seed, owner, drift, scale)
        offset = slope * (t_s - drift.start_s) / DAY_S
        value = saturate(sensor, reading.value + offset)
        return FaultKind.DRIFT, value, drift.start_s, round(value - reading.value, 6)
    return None


def _drift_slope_per_day(seed: int, owner: str, spell: Episode, scale: float) -> float:
    """How fast a drift spell's offset grows: a fifth to one typical error a day, either way."""
    key = round(spell.start_s * 1000) % (2**61)
    magnitude = (0.2 + 0.8 * _noise.uniform(seed, "drift-rate", owner, key)) * scale
    return magnitude if _noise.uniform(seed, "drift-sign", owner, key) < 0.5 else -magnitude


def saturate(sensor: str, value: float) -> float:
    """``value`` saturated at the sensor's physical range and rounded to its resolution."""
    spec = SENSORS[sensor]
    return round(min(spec.maximum, max(spec.minimum, value)), DIGITS.get(sensor, DEFAULT_DIGITS))
