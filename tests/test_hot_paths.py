"""The ingest hot paths give exactly what the general paths give."""

from __future__ import annotations

import json
import random

import pytest

from agrimatch.contract import telemetry
from agrimatch.contract.sensors import SENSORS
from agrimatch.contract.telemetry import TimeLimits, decode_telemetry
from agrimatch.store import Point
from agrimatch.store.influx import LineBuilder, to_line

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
