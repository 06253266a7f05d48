"""The ingest hot paths give exactly what the general paths give."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from agrimatch.contract import telemetry
from agrimatch.contract.sensors import SENSORS
from agrimatch.contract.telemetry import TimeLimits, decode_telemetry
from agrimatch.store import Point
from agrimatch.store.influx import LineBuilder, to_line

# Bad input, kept running: part of the fault suite (pytest -m faults) as well as CI.
pytestmark = pytest.mark.faults

NOW = 1_764_072_000.0
DEVICE = "dev-7"


def _slow_decode(payload: bytes, now: float, limits: TimeLimits):
    """decode_telemetry with the clean-pack shortcut switched off."""
    original = telemetry._decode_clean_pack
    telemetry._decode_clean_pack = lambda *args: None
    try:
        return decode_telemetry(payload, DEVICE, now, limits)
    except telemetry.MessageRejected as exc:
        return ("rejected", exc.reason)
    finally:
        telemetry._decode_clean_pack = original


def _random_pack(rng: random.Random) -> bytes:
    names = [*SENSORS, "bogus"]
    records = []
    for i in range(rng.randint(1, 14)):
        name = rng.choice(names)
        spec = SENSORS.get(name)
        low, high = (spec.minimum, spec.maximum) if spec else (0, 1)
        record: dict[str, object] = {"n": name, "v": rng.uniform(low - 5, high + 5)}
        if i == 0:
            record["bn"] = f"urn:dev:agrimatch:{rng.choice([DEVICE, DEVICE, 'other'])}:"
            record["bt"] = rng.choice([NOW, NOW - 86400 * 100, NOW + 600, 12.0, NOW - 30])
        record["u"] = spec.unit if spec and rng.random() < 0.9 else rng.choice(["Cel", "%", None])
        if record["u"] is None:
            del record["u"]
        if rng.random() < 0.3:
            record["t"] = rng.choice([-60, -3600.5, 0, 400, 1e9])
        if rng.random() < 0.03:
            record["vs"] = "x"
        if rng.random() < 0.03:
            record["v"] = rng.choice([True, "1", None, 10**400])
        records.append(record)
    return json.dumps(records).encode()


def test_clean_pack_shortcut_agrees_with_the_full_decoder_on_random_packs():
    rng = random.Random(20261125)
    limits = TimeLimits()
    shortcut_taken = 0
    for _ in range(3000):
        payload = _random_pack(rng)
        doc = json.loads(payload)
        fast = telemetry._decode_clean_pack(
            telemetry.senml.parse_json(payload), DEVICE, NOW, limits
        )
        slow = _slow_decode(payload, NOW, limits)
        if fast is not None:
            shortcut_taken += 1
            assert fast == slow, doc
        try:
            both = decode_telemetry(payload, DEVICE, NOW, limits)
        except telemetry.MessageRejected as exc:
            both = ("rejected", exc.reason)
        assert both == slow, doc
    assert shortcut_taken > 100  # the random packs exercise the shortcut, not only the fallback


# --- hypothesis: packs with every SenML base field -----------------------------------------------

_UNITS = sorted({spec.unit for spec in SENSORS.values()})
# Any JSON scalar, including the types a base or record field must not have.
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "Cel", "10", "aGk", "urn:dev:agrimatch:"]),
)
_BASE_NAMES = st.sampled_from(
    [f"urn:dev:agrimatch:{DEVICE}:", "urn:dev:agrimatch:", "urn:dev:agrimatch:other:", ""]
)
_NAMES = st.one_of(
    st.sampled_from(sorted(SENSORS)),
    st.sampled_from([f"urn:dev:agrimatch:{DEVICE}:air_temp", "bogus", "air temp", ""]),
)
_TIMES = st.one_of(
    st.sampled_from([NOW, NOW - 30, NOW - 86400 * 100, NOW + 600, 12.0, 0.0]),
    st.floats(-1e6, 1e6),
)
_VALUES = st.one_of(st.floats(-200, 1700), st.sampled_from([0.0, -40.0, 60.0, 100.0, 1600.0]))


def _either(good: st.SearchStrategy, junk_share: int = 8) -> st.SearchStrategy:
    """Mostly ``good`` values, now and then any JSON scalar."""
    return st.one_of(*([good] * junk_share), _JUNK)


# Every label RFC 8428 defines, each with the values it may take and, now and then, any other.
_LABELS = {
    "bn": _either(_BASE_NAMES),
    "bt": _either(_TIMES),
    "bu": _either(st.sampled_from(_UNITS), junk_share=2),
    "bv": _either(st.floats(-10, 10)),
    "bs": _either(st.floats(-10, 10)),
    "bver": _either(st.sampled_from([5, 10, 11])),
    "n": _either(_NAMES),
    "u": _either(st.sampled_from(_UNITS)),
    "v": _either(_VALUES),
    "vs": _either(st.just("text")),
    "vb": _either(st.booleans()),
    "vd": _either(st.sampled_from(["aGk", "!!"])),
    "s": _either(st.floats(0, 10)),
    "t": _either(st.sampled_from([-60.0, 0.0, -3600.5, 400.0, 1e9, 0.0005])),
    "ut": _either(st.floats(0, 600)),
}


@st.composite
def _record(draw: st.DrawFn, first: bool) -> dict[str, object]:
    """A good reading of a random sensor, then none to a few labels changed or added."""
    spec = draw(st.sampled_from(sorted(SENSORS.values(), key=lambda x: x.name)))
    record: dict[str, object] = {"n": spec.name, "u": spec.unit}
    record["v"] = draw(st.floats(spec.minimum, spec.maximum))
    if first:
        record = {"bn": f"urn:dev:agrimatch:{DEVICE}:", "bt": NOW} | record
    if not first or draw(st.booleans()):
        record["t"] = -draw(st.integers(0, 10**7)) / 1000  # up to ~3 h before the base time
    # Most records stay good, so that whole packs take the shortcut often enough to compare.
    changed = draw(st.integers(0, 3)) == 0
    labels = st.sampled_from(sorted(_LABELS))
    changes = draw(st.lists(labels, min_size=1, max_size=3, unique=True)) if changed else []
    for label in changes:
        if label in record and draw(st.integers(0, 3)) == 0:
            del record[label]
        else:
            record[label] = draw(_LABELS[label])
    return record


@st.composite
def _packs(draw: st.DrawFn) -> list[dict[str, object]]:
    records = [draw(_record(first=True))]
    records += draw(st.lists(_record(first=False), max_size=6))
    if draw(st.integers(0, 4)) == 0:  # a repeated record: same sensor, same time
        records.append(dict(draw(st.sampled_from(records))))
    return records


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_packs())
def test_clean_pack_shortcut_agrees_with_the_full_decoder_on_packs_with_every_base_field(pack):
    payload = json.dumps(pack).encode()  # NaN and Infinity as Python's json writes them
    note(payload.decode())
    limits = TimeLimits()
    fast = telemetry._decode_clean_pack(telemetry.senml.parse_json(payload), DEVICE, NOW, limits)
    slow = _slow_decode(payload, NOW, limits)
    if fast is not None:
        assert fast == slow
    try:
        both = decode_telemetry(payload, DEVICE, NOW, limits)
    except telemetry.MessageRejected as exc:
        both = ("rejected", exc.reason)
    assert both == slow


@pytest.mark.parametrize(
    "pack",
    [
        pytest.param([{"bn": f"urn:dev:agrimatch:{DEVICE}:", "bu": None, "n": "air_temp",
                       "u": "Cel", "v": 1.0}], id="bu-null"),
        pytest.param([{"bn": f"urn:dev:agrimatch:{DEVICE}:", "bu": 5, "n": "air_temp",
                       "u": "Cel", "v": 1.0}], id="bu-number"),
    ],
)  # fmt: skip
def test_a_base_unit_of_the_wrong_type_is_refused_by_the_shortcut_as_by_the_codec(pack):
    payload = json.dumps(pack).encode()
    parsed = telemetry.senml.parse_json(payload)
    assert telemetry._decode_clean_pack(parsed, DEVICE, NOW, TimeLimits()) is None
    with pytest.raises(telemetry.MessageRejected, match="'bu' must be a string"):
        decode_telemetry(payload, DEVICE, NOW)


@pytest.mark.parametrize(
    "fields",
    [
        {"air_temp": 21.0},
        {"air_temp": -3.25, "rsrp": -101.5, "battery": 3.7},
        {"count": 7, "ok": True, "off": False},
        {"note": 'a "quoted", text\\ here'},
        {"weird key=,x": 1.5e-7, "big": 1e21},
    ],
)
def test_line_builder_matches_influxdb_client_point(fields):
    builder = LineBuilder()
    tags = {"farm": "f 1", "field": "a,b", "device": "d=1"}
    point = Point("tele metry", tags, fields, 1_764_072_000_123)
    assert builder.line(point) == to_line(point)
    assert builder.line(point) == to_line(point)  # from the cache, the same


def test_line_builder_refuses_what_to_line_refuses():
    with pytest.raises(ValueError):
        LineBuilder().line(Point("m", {"a": "b"}, {"x": float("nan")}, 1))
    with pytest.raises(ValueError):
        LineBuilder().line(Point("m", {"a": "b"}, {}, 1))
