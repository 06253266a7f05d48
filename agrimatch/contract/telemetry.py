"""agrimatch telemetry: SenML packs of canonical sensor readings, and their validation.

A device publishes on ``agrimatch/v1/{farm}/{field}/{device}/telemetry`` a SenML
(RFC 8428) pack whose resolved names are ``urn:dev:agrimatch:{device}:{sensor}``,
with the sensor's unit from :data:`~agrimatch.contract.sensors.SENSORS` and a
numeric value. :func:`decode_telemetry` turns such a payload into readings, one
per usable record, and says precisely why each other record is unusable; it
raises :class:`MessageRejected` when the message as a whole cannot be trusted.

Each record is judged by the first check it fails, in this order: name and
sensor, value type and finiteness, unit, numeric value, physical range, time.
A good record whose sensor and sample time (to the millisecond) an earlier
good record of the same pack already gave is a ``duplicate_record`` problem:
the first is kept, the repeat is reported rather than silently overwriting it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agrimatch.contract import senml
from agrimatch.contract.reasons import Reason
from agrimatch.contract.sensors import SENSORS

MAX_PAYLOAD_BYTES = 64 * 1024
BASE_NAME_PREFIX = "urn:dev:agrimatch:"


def base_name(device: str) -> str:
    """SenML base name of a device's records: ``urn:dev:agrimatch:{device}:``."""
    return f"{BASE_NAME_PREFIX}{device}:"


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample of one sensor."""

    sensor: str  # canonical sensor name, key of agrimatch.contract.sensors.SENSORS
    time_ms: int  # sample time, UTC epoch milliseconds (device sample time, never arrival)
    value: float


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """Why one record of a pack was not turned into a reading."""

    index: int  # position of the record in the pack (0-based)
    reason: Reason
    detail: str  # precise, human readable: names the sensor, value, unit, limit...


@dataclass(frozen=True, slots=True)
class DecodedTelemetry:
    """The usable readings of a message and the problems of its other records, in pack order."""

    readings: list[Reading]
    problems: list[RecordProblem]


class MessageRejected(Exception):
    """The whole message is unusable (it goes to the dead-letter topic of ``reason``)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """How far a sample time may lie from "now" and still be accepted."""

    # A device clock a few minutes fast is tolerated; hours is a broken clock.
    max_future_s: float = 300.0
    # Store-and-forward replays after a long outage are still worth having.
    max_age_s: float = 90 * 86400.0


_PROBLEM_REASONS = {
    senml.ProblemKind.INVALID_NAME: Reason.UNKNOWN_SENSOR,
    senml.ProblemKind.WRONG_TYPE: Reason.WRONG_TYPE,
    senml.ProblemKind.NOT_FINITE: Reason.NOT_FINITE,
}


def decode_telemetry(
    payload: bytes, device: str, now: float, limits: TimeLimits = TimeLimits()
) -> DecodedTelemetry:
    """Decode and validate a telemetry payload published by ``device``.

    ``now`` (UTC epoch seconds, from the kernel's clock) resolves relative SenML
    times and bounds the accepted sample times with ``limits``. Good records
    become readings, each with its own sample time; bad ones become problems.
    Raises :class:`MessageRejected` (and nothing else, whatever the bytes) when
    the message is too large, not JSON, not a SenML pack, or names another
    device than ``device``.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        # Checked before parsing so an oversized payload costs nothing.
        raise MessageRejected(
            Reason.TOO_LARGE, f"payload is {len(payload)} bytes, the limit is {MAX_PAYLOAD_BYTES}"
        )
    try:
        doc = senml.parse_json(payload)
        fast = _decode_clean_pack(doc, device, now, limits)
        if fast is not None:
            return fast
        pack = senml.resolve_pack(doc, now)
    except senml.NotJsonError as exc:
        raise MessageRejected(Reason.NOT_JSON, str(exc)) from None
    except senml.SenmlError as exc:
        raise MessageRejected(Reason.NOT_SENML, str(exc)) from None

    # A pack that speaks for another device is not trustworthy as a whole, so it
    # is refused before any of its records is kept.
    for index, name in sorted(
        [(r.index, r.name) for r in pack.records] + [(p.index, p.name) for p in pack.problems]
    ):
        claimed = _claimed_device(name)
        if claimed is not None and claimed != device:
            raise MessageRejected(
                Reason.DEVICE_MISMATCH,
                f"record {index} is named {_show(name)}, which names device "
                f"{_show(claimed)}, but the topic's device is {device!r}",
            )

    readings: list[Reading] = []
    problems: list[RecordProblem] = []
    first_of: dict[tuple[str, int], int] = {}  # (sensor, time_ms) -> index of its first record
    for error in pack.problems:
        sensor_problem = _sensor_problem(error.name, device)
        if error.kind is not senml.ProblemKind.INVALID_NAME and sensor_problem:
            problems.append(RecordProblem(error.index, Reason.UNKNOWN_SENSOR, sensor_problem))
        else:
            problems.append(RecordProblem(error.index, _PROBLEM_REASONS[error.kind], error.detail))
    for record in pack.records:
        result = _check_record(record, device, now, limits)
        if isinstance(result, RecordProblem):
            problems.append(result)
            continue
        # One reading per sensor and sample time: a point holds one value per field, so
        # a repeat would silently overwrite the first. The first is kept, a repeat is said.
        key = (result.sensor, result.time_ms)
        first = first_of.setdefault(key, record.index)
        if first != record.index:
            problems.append(
                RecordProblem(
                    record.index,
                    Reason.DUPLICATE_RECORD,
                    f"{result.sensor} at {result.time_ms} ms repeats record {first}'s sensor "
                    "and sample time; the first is kept",
                )
            )
            continue
        readings.append(result)
    problems.sort(key=lambda p: p.index)
    return DecodedTelemetry(readings, problems)


_CLEAN_LABELS = frozenset({"bn", "bt", "bu", "n", "u", "v", "t"})


def _decode_clean_pack(
    doc: object, device: str, now: float, limits: TimeLimits
) -> DecodedTelemetry | None:
    """One pass over a pack of nothing but good numeric readings, the ingest hot path.

    Returns None at the first thing it does not expect, and the full codec
    (:func:`senml.resolve_pack` then :func:`_check_record`) decides, with its
    precise reasons; for every pack it accepts, it returns what that path would.
    """
    if type(doc) is not list or not doc:
        return None
    prefix = base_name(device)
    base_name_, base_time, base_unit = "", 0.0, None
    readings = []
    seen: set[tuple[str, int]] = set()
    for record in doc:
        if type(record) is not dict or not record.keys() <= _CLEAN_LABELS:
            return None  # includes senml's duplicate-label marker, a dict subclass
        if "bn" in record:
            base_name_ = record["bn"]
        if "bt" in record:
            base_time = record["bt"]
        if "bu" in record:
            base_unit = record["bu"]
            # Checked even when the record's own unit wins: the codec refuses a pack whose
            # base unit is not a string ("bu": null, "bu": 5), wherever it is used.
            if type(base_unit) is not str:
                return None
        value, offset = record.get("v"), record.get("t", 0.0)
        name = record.get("n", "")
        if (
            type(base_name_) is not str
            or type(name) is not str
            or type(value) is not float  # parse_json reads every number as float
            or type(offset) is not float
            or type(base_time) is not float
        ):
            return None
        full_name = base_name_ + name
        spec = SENSORS.get(full_name[len(prefix) :]) if full_name.startswith(prefix) else None
        if spec is None or record.get("u", base_unit) != spec.unit:
            return None
        time_s = base_time + offset
        if time_s < senml.RELATIVE_TIME_LIMIT:
            time_s += now
        if not (
            math.isfinite(value)
            and math.isfinite(time_s)
            and spec.minimum <= value <= spec.maximum
            and -limits.max_age_s <= time_s - now <= limits.max_future_s
        ):
            return None
        time_ms = round(time_s * 1000)
        if (spec.name, time_ms) in seen:
            return None  # a repeated sensor and time: the full path says duplicate_record
        seen.add((spec.name, time_ms))
        readings.append(Reading(spec.name, time_ms, value))
    return DecodedTelemetry(readings, [])


def _claimed_device(name: str) -> str | None:
    """The device a name in agrimatch's namespace speaks for, or None outside it."""
    if not name.startswith(BASE_NAME_PREFIX):
        return None
    return name[len(BASE_NAME_PREFIX) :].partition(":")[0]


def _sensor_problem(name: str, device: str) -> str:
    """Why ``name`` is not one of ``device``'s known sensors, or ``""`` if it is."""
    prefix = base_name(device)
    if not name.startswith(prefix):
        return f"name {_show(name)} is not of the form '{prefix}{{sensor}}'"
    sensor = name[len(prefix) :]
    if sensor not in SENSORS:
        return f"unknown sensor {_show(sensor)} (known: {', '.join(sorted(SENSORS))})"
    return ""


def _check_record(
    record: senml.Record, device: str, now: float, limits: TimeLimits
) -> Reading | RecordProblem:
    def problem(reason: Reason, detail: str) -> RecordProblem:
        return RecordProblem(record.index, reason, detail)

    unknown = _sensor_problem(record.name, device)
    if unknown:
        return problem(Reason.UNKNOWN_SENSOR, unknown)
    sensor = record.name[len(base_name(device)) :]
    spec = SENSORS[sensor]

    if record.unit != spec.unit:
        got = "no unit" if record.unit is None else f"unit {_show(record.unit)}"
        return problem(Reason.WRONG_UNIT, f"{sensor} has {got}, its unit is {spec.unit!r}")

    if record.value is None:
        return problem(
            Reason.WRONG_TYPE, f"{sensor} needs a numeric value 'v', got {_value_kind(record)}"
        )
    value = record.value
    # Non-finite values were already caught by the codec; this keeps the range check honest.
    if not math.isfinite(value):
        return problem(Reason.NOT_FINITE, f"{sensor} value is {value!r}")
    if not spec.minimum <= value <= spec.maximum:
        return problem(
            Reason.OUT_OF_RANGE,
            f"{sensor} = {value!r} {spec.unit} is outside its range "
            f"[{spec.minimum!r}, {spec.maximum!r}] {spec.unit}",
        )

    ahead = record.time - now
    if ahead > limits.max_future_s:
        return problem(
            Reason.TIME_IN_FUTURE,
            f"{sensor} sample time {record.time:.13g} s is {ahead:.13g} s after now "
            f"({now:.13g} s), more than the {limits.max_future_s:.13g} s allowed",
        )
    if -ahead > limits.max_age_s:
        return problem(
            Reason.TIME_TOO_OLD,
            f"{sensor} sample time {record.time:.13g} s is {-ahead:.13g} s before now "
            f"({now:.13g} s), more than the {limits.max_age_s:.13g} s allowed",
        )
    return Reading(sensor=sensor, time_ms=round(record.time * 1000), value=value)


def _show(value: object, limit: int = 60) -> str:
    """``repr`` of a value from the wire, cut short: a payload can be 64 KiB of one string."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _value_kind(record: senml.Record) -> str:
    if record.string_value is not None:
        return f"a string value 'vs' {_show(record.string_value)}"
    if record.bool_value is not None:
        return f"a boolean value 'vb' {str(record.bool_value).lower()}"
    if record.data_value is not None:
        return "a data value 'vd'"
    return f"only a sum 's' {record.sum!r}"


def encode_telemetry(
    device: str, readings: Sequence[Reading], base_time_s: float | None = None
) -> bytes:
    """Encode readings as ``device``'s SenML telemetry pack; :func:`decode_telemetry` inverts it.

    The pack carries the device's base name and a base time (``base_time_s``,
    default the first reading's time, kept to the millisecond); each record has
    the sensor, its unit, the value and its time relative to the base time, so
    store-and-forward batches keep every sample's own time, to the millisecond.
    Raises ``ValueError`` for no readings, an unknown sensor, a non-finite value
    or a time before 2**28 s (1978), which SenML would read as relative.
    """
    if not readings:
        raise ValueError("no readings to encode: a SenML pack holds at least one record")
    prefix = base_name(device)
    records = []
    for reading in readings:
        spec = SENSORS.get(reading.sensor)
        if spec is None:
            raise ValueError(f"unknown sensor {reading.sensor!r}")
        if reading.time_ms < senml.RELATIVE_TIME_LIMIT * 1000:
            raise ValueError(
                f"{reading.sensor} time {reading.time_ms} ms is before 2**28 s, "
                "which SenML reads as a time relative to now"
            )
        records.append(
            senml.Record(
                name=prefix + reading.sensor,
                time=reading.time_ms / 1000,
                unit=spec.unit,
                value=float(reading.value),
            )
        )
    if base_time_s is not None and not math.isfinite(base_time_s):
        raise ValueError(f"base time {base_time_s!r} is not a finite number")
    # Whole milliseconds keep bt short and every relative t an exact decimal.
    base_ms = readings[0].time_ms if base_time_s is None else round(base_time_s * 1000)
    return senml.encode_pack(records, base_name=prefix, base_time=base_ms / 1000)
