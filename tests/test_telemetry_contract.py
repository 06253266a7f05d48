"""agrimatch's telemetry contract: SenML packs of canonical sensors, and what ingest refuses."""

from __future__ import annotations

import json
import random
import re

import pytest

from agrimatch.contract import (
    BASE_NAME_PREFIX,
    MAX_PAYLOAD_BYTES,
    SENSORS,
    DecodedTelemetry,
    MessageRejected,
    Reading,
    Reason,
    RecordProblem,
    TimeLimits,
    base_name,
    decode_telemetry,
    encode_telemetry,
)

NOW = 1_764_072_000.0  # 2025-11-25 12:00 UTC
NOW_MS = int(NOW * 1000)
DEVICE = "dev-1"
BN = "urn:dev:agrimatch:dev-1:"


DEFAULT_LIMITS = TimeLimits()


def decode(
    records: list[dict[str, object]], limits: TimeLimits = DEFAULT_LIMITS
) -> DecodedTelemetry:
    return decode_telemetry(json.dumps(records).encode(), DEVICE, NOW, limits)


def problem_of(record: dict[str, object]) -> RecordProblem:
    """The problem of ``record`` placed after a good record; the good one must survive."""
    result = decode([{"bn": BN, "n": "air_temp", "u": "Cel", "v": 20}, record])
    assert result.readings == [Reading("air_temp", NOW_MS, 20.0)]
    [problem] = result.problems
    assert problem.index == 1
    return problem


def rejection(payload: bytes, device: str = DEVICE) -> MessageRejected:
    with pytest.raises(MessageRejected) as raised:
        decode_telemetry(payload, device, NOW)
    return raised.value


# --- names and round trips -----------------------------------------------------------------------


def test_base_name_is_the_device_urn_with_a_trailing_colon():
    assert base_name("dev-1") == "urn:dev:agrimatch:dev-1:"
    assert base_name("dev-1").startswith(BASE_NAME_PREFIX)


def test_encoded_readings_decode_to_the_same_readings():
    readings = [
        Reading("air_temp", NOW_MS, 21.5),
        Reading("air_rh", NOW_MS, 80.0),
        Reading("soil_moisture_10cm", NOW_MS - 60_000, 31.25),
        Reading("rsrp", NOW_MS - 1, -101.0),
    ]
    result = decode_telemetry(encode_telemetry(DEVICE, readings), DEVICE, NOW)
    assert result == DecodedTelemetry(readings, [])


def test_encoded_pack_is_compact_senml_with_base_name_base_time_and_relative_times():
    readings = [Reading("air_temp", NOW_MS, 21.5), Reading("rain", NOW_MS - 600_000, 0.2)]
    assert json.loads(encode_telemetry(DEVICE, readings)) == [
        {"bn": BN, "bt": NOW, "n": "air_temp", "u": "Cel", "v": 21.5},
        {"n": "rain", "u": "mm", "v": 0.2, "t": -600.0},
    ]


def test_relative_times_are_written_as_short_decimals_without_float_noise():
    readings = [Reading("air_temp", NOW_MS, 21.5), Reading("air_temp", NOW_MS - 123, 21.5)]
    assert b'"t":-0.123}' in encode_telemetry(DEVICE, readings)


def test_round_trip_keeps_each_sample_time_to_the_millisecond():
    rng = random.Random(8428)
    for _ in range(200):
        readings = [
            Reading(
                rng.choice(sorted(SENSORS)),
                NOW_MS - rng.randrange(0, 80 * 86_400_000),
                round(rng.uniform(0.0, 1.0), 3),
            )
            for _ in range(rng.randrange(1, 20))
        ]
        readings = [
            Reading(r.sensor, r.time_ms, SENSORS[r.sensor].minimum + r.value) for r in readings
        ]
        base = None if rng.random() < 0.5 else NOW - rng.uniform(0, 86_400)
        encoded = encode_telemetry(DEVICE, readings, base_time_s=base)
        assert decode_telemetry(encoded, DEVICE, NOW).readings == readings


def test_store_and_forward_replay_keeps_every_record_its_own_sample_time():
    # An hour of 10-minute samples held through an outage, sent in one pack now.
    replay = [Reading("soil_temp", NOW_MS - k * 600_000, 12.0 + k) for k in range(6, 0, -1)]
    result = decode_telemetry(encode_telemetry(DEVICE, replay, base_time_s=NOW), DEVICE, NOW)
    assert [r.time_ms for r in result.readings] == [r.time_ms for r in replay]


def test_hand_written_pack_with_bases_changing_mid_pack_decodes():
    result = decode(
        [
            {"bn": BN, "bt": NOW - 120, "bu": "%", "n": "soil_moisture_10cm", "v": 30},
            {"n": "soil_moisture_30cm", "t": 60, "v": 35},
            {"bu": "Cel", "bv": 10, "n": "soil_temp", "v": 2.5},
            {"bt": NOW, "n": "air_temp", "v": 5},
        ]
    )
    assert result == DecodedTelemetry(
        [
            Reading("soil_moisture_10cm", NOW_MS - 120_000, 30.0),
            Reading("soil_moisture_30cm", NOW_MS - 60_000, 35.0),
            Reading("soil_temp", NOW_MS - 120_000, 12.5),
            Reading("air_temp", NOW_MS, 15.0),
        ],
        [],
    )


def test_relative_times_of_a_device_without_a_clock_count_from_now():
    result = decode([{"bn": BN, "n": "battery", "u": "V", "v": 3.9, "t": -30}])
    assert result.readings == [Reading("battery", NOW_MS - 30_000, 3.9)]


def test_encoder_refuses_an_unknown_sensor_an_empty_pack_and_times_senml_reads_as_relative():
    with pytest.raises(ValueError, match="unknown sensor"):
        encode_telemetry(DEVICE, [Reading("wind", NOW_MS, 1.0)])
    with pytest.raises(ValueError, match="no readings"):
        encode_telemetry(DEVICE, [])
    with pytest.raises(ValueError, match="2\\*\\*28"):
        encode_telemetry(DEVICE, [Reading("air_temp", 1000, 1.0)])


# --- whole-message rejections --------------------------------------------------------------------


def test_payload_over_64_kib_is_too_large_before_any_parsing():
    payload = b"\xff" * (MAX_PAYLOAD_BYTES + 1)  # not even UTF-8: size is judged first
    error = rejection(payload)
    assert error.reason is Reason.TOO_LARGE
    assert str(MAX_PAYLOAD_BYTES + 1) in error.detail


def test_payload_of_exactly_64_kib_is_accepted():
    pack = encode_telemetry(DEVICE, [Reading("air_temp", NOW_MS, 20.0)])
    payload = pack + b" " * (MAX_PAYLOAD_BYTES - len(pack))
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert decode_telemetry(payload, DEVICE, NOW).readings == [Reading("air_temp", NOW_MS, 20.0)]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\xff\x00 not json", id="not-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(b"air_temp=20", id="line-protocol"),
        pytest.param(b'[{"n": "air_temp", "v": 1}', id="truncated"),
        pytest.param(b"[" * 30_000, id="deeply-nested"),
    ],
)
def test_payload_that_is_not_utf8_json_is_rejected_as_not_json(payload):
    assert rejection(payload).reason is Reason.NOT_JSON


@pytest.mark.parametrize(
    "pack",
    [
        pytest.param({"n": BN + "air_temp", "v": 1}, id="object-not-array"),
        pytest.param([], id="empty-array"),
        pytest.param([{"bn": BN, "n": "air_temp", "u": "Cel", "v": 1}, "x"], id="string-record"),
        pytest.param([{"bn": BN, "n": "air_temp", "u": "Cel"}], id="record-without-value"),
        pytest.param([{"bn": 1, "n": "air_temp", "u": "Cel", "v": 1}], id="bn-not-string"),
        pytest.param([{"bn": BN, "n": 7, "u": "Cel", "v": 1}], id="n-not-string"),
        pytest.param([{"bn": BN, "bt": "now", "n": "air_temp", "v": 1}], id="bt-not-number"),
        pytest.param([{"bn": BN, "n": "air_temp", "t": "0", "v": 1}], id="t-not-number"),
        pytest.param([{"bn": BN, "bver": 12, "n": "air_temp", "v": 1}], id="unsupported-bver"),
        pytest.param([{"bn": BN, "n": "air_temp", "v": 1, "vs": "1"}], id="two-values"),
    ],
)
def test_json_that_is_not_a_senml_pack_is_rejected_as_not_senml(pack):
    assert rejection(json.dumps(pack).encode()).reason is Reason.NOT_SENML


@pytest.mark.parametrize(
    "records",
    [
        pytest.param(
            [{"bn": "urn:dev:agrimatch:dev-2:", "n": "air_temp", "u": "Cel", "v": 1}],
            id="base-name-of-another-device",
        ),
        pytest.param(
            [
                {"bn": BN, "n": "air_temp", "u": "Cel", "v": 1},
                {"bn": "urn:dev:agrimatch:dev-10:", "n": "air_temp", "u": "Cel", "v": 1},
            ],
            id="one-record-of-another-device",
        ),
        pytest.param(
            [{"n": "urn:dev:agrimatch:dev-2:air_temp", "u": "Cel", "v": 1}],
            id="full-name-of-another-device",
        ),
        pytest.param(
            [{"bn": "urn:dev:agrimatch:dev-2:", "n": "air_temp", "u": "Cel", "v": "NaN"}],
            id="even-in-an-otherwise-bad-record",
        ),
    ],
)
def test_pack_naming_another_device_than_the_topic_is_rejected_whole(records):
    error = rejection(json.dumps(records).encode())
    assert error.reason is Reason.DEVICE_MISMATCH
    assert "dev-1" in error.detail


def test_message_rejected_carries_reason_and_detail():
    error = MessageRejected(Reason.NOT_JSON, "not JSON: Expecting value")
    assert (error.reason, error.detail) == (Reason.NOT_JSON, "not JSON: Expecting value")
    assert "not_json" in str(error)


# --- record problems -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "reason", "in_detail"),
    [
        pytest.param(
            {"bn": BN, "n": "wind_speed", "u": "m/s", "v": 3},
            Reason.UNKNOWN_SENSOR,
            "'wind_speed'",
            id="unknown-sensor",
        ),
        pytest.param(
            {"bn": "urn:dev:ow:10e2073a01080063", "u": "Cel", "v": 23.1},
            Reason.UNKNOWN_SENSOR,
            "urn:dev:ow:10e2073a01080063",
            id="foreign-name",
        ),
        pytest.param(
            {"bn": BN, "u": "Cel", "v": 1}, Reason.UNKNOWN_SENSOR, "''", id="no-sensor-in-name"
        ),
        pytest.param(
            {"bn": BN, "n": "air temp", "u": "Cel", "v": 1},
            Reason.UNKNOWN_SENSOR,
            "air temp",
            id="invalid-name",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp:max", "u": "Cel", "v": 1},
            Reason.UNKNOWN_SENSOR,
            "air_temp:max",
            id="sensor-with-suffix",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "u": "K", "v": 293},
            Reason.WRONG_UNIT,
            "air_temp has unit 'K', its unit is 'Cel'",
            id="wrong-unit",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "v": 20},
            Reason.WRONG_UNIT,
            "air_temp has no unit, its unit is 'Cel'",
            id="missing-unit",
        ),
        pytest.param(
            {"bn": BN, "bu": "%RH", "n": "soil_moisture_10cm", "v": 20},
            Reason.WRONG_UNIT,
            "'%RH'",
            id="wrong-base-unit",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "u": "Cel", "vs": "20"},
            Reason.WRONG_TYPE,
            "string value 'vs'",
            id="string-value",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "u": "Cel", "vb": True},
            Reason.WRONG_TYPE,
            "boolean value 'vb'",
            id="boolean-value",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "u": "Cel", "vd": "AAE"},
            Reason.WRONG_TYPE,
            "data value 'vd'",
            id="data-value",
        ),
        pytest.param(
            {"bn": BN, "n": "rain", "u": "mm", "s": 12},
            Reason.WRONG_TYPE,
            "only a sum",
            id="sum-only",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "u": "Cel", "v": "20.5"},
            Reason.WRONG_TYPE,
            "'v' must be a number, got string '20.5'",
            id="string-in-v",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "u": "Cel", "v": True},
            Reason.WRONG_TYPE,
            "'v' must be a number, got boolean true",
            id="bool-in-v",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "u": "Cel", "v": -90.5},
            Reason.OUT_OF_RANGE,
            "air_temp = -90.5 Cel is outside its range [-90.0, 60.0] Cel",
            id="below-minimum",
        ),
        pytest.param(
            {"bn": BN, "n": "soil_moisture_30cm", "u": "%", "v": 100.01},
            Reason.OUT_OF_RANGE,
            "soil_moisture_30cm = 100.01 %",
            id="above-maximum",
        ),
        pytest.param(
            {"bn": BN, "n": "rsrp", "u": "dBm", "bv": -100, "v": 80},
            Reason.OUT_OF_RANGE,
            "rsrp = -20.0 dBm",
            id="above-maximum-after-base-value",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "u": "Cel", "v": 20, "t": 301},
            Reason.TIME_IN_FUTURE,
            "301 s after now",
            id="future",
        ),
        pytest.param(
            {"bn": BN, "bt": NOW + 86_400, "n": "air_temp", "u": "Cel", "v": 20},
            Reason.TIME_IN_FUTURE,
            "air_temp sample time",
            id="future-absolute",
        ),
        pytest.param(
            {"bn": BN, "n": "air_temp", "u": "Cel", "v": 20, "t": -90 * 86400 - 1},
            Reason.TIME_TOO_OLD,
            "7776001 s before now",
            id="too-old",
        ),
        pytest.param(
            {"bn": BN, "bt": 1e9, "n": "air_temp", "u": "Cel", "v": 20},
            Reason.TIME_TOO_OLD,
            "air_temp sample time 1000000000 s",
            id="too-old-absolute",
        ),
    ],
)
def test_bad_record_is_reported_with_its_reason_and_a_precise_detail(record, reason, in_detail):
    problem = problem_of(record)
    assert problem.reason is reason
    assert in_detail in problem.detail


@pytest.mark.parametrize(
    "value_json",
    [
        pytest.param("NaN", id="NaN"),
        pytest.param("Infinity", id="Infinity"),
        pytest.param("-Infinity", id="minus-Infinity"),
        pytest.param("1e999", id="overflowing-literal"),
    ],
)
def test_non_finite_value_is_a_not_finite_problem(value_json):
    payload = (
        f'[{{"bn":"{BN}","n":"air_temp","u":"Cel","v":20}},'
        f'{{"n":"air_rh","u":"%RH","v":{value_json}}}]'
    ).encode()
    result = decode_telemetry(payload, DEVICE, NOW)
    assert result.readings == [Reading("air_temp", NOW_MS, 20.0)]
    [problem] = result.problems
    assert (problem.index, problem.reason) == (1, Reason.NOT_FINITE)
    assert "air_rh" in problem.detail


def test_unknown_sensor_outranks_a_non_finite_value():
    payload = f'[{{"bn":"{BN}","n":"wind","u":"m/s","v":NaN}}]'.encode()
    [problem] = decode_telemetry(payload, DEVICE, NOW).problems
    assert problem.reason is Reason.UNKNOWN_SENSOR


@pytest.mark.parametrize(
    ("sensor", "unit", "value"),
    [(s.name, s.unit, v) for s in SENSORS.values() for v in (s.minimum, s.maximum)],
)
def test_range_limits_themselves_are_accepted(sensor, unit, value):
    result = decode([{"bn": BN, "n": sensor, "u": unit, "v": value}])
    assert result.readings == [Reading(sensor, NOW_MS, value)]


@pytest.mark.parametrize(
    ("offset_s", "accepted"),
    [(300.0, True), (300.001, False), (-90 * 86400.0, True), (-90 * 86400.0 - 0.001, False)],
)
def test_time_limits_are_inclusive(offset_s, accepted):
    result = decode([{"bn": BN, "bt": NOW + offset_s, "n": "air_temp", "u": "Cel", "v": 1}])
    assert bool(result.readings) is accepted


def test_time_limits_can_be_tightened_by_the_caller():
    limits = TimeLimits(max_future_s=0.0, max_age_s=3600.0)
    result = decode(
        [
            {"bn": BN, "n": "air_temp", "u": "Cel", "v": 1, "t": 1},
            {"n": "air_temp", "u": "Cel", "v": 2, "t": -3601},
            {"n": "air_temp", "u": "Cel", "v": 3, "t": -3600},
        ],
        limits=limits,
    )
    assert [p.reason for p in result.problems] == [Reason.TIME_IN_FUTURE, Reason.TIME_TOO_OLD]
    assert result.readings == [Reading("air_temp", NOW_MS - 3_600_000, 3.0)]


def test_mixed_pack_keeps_the_good_records_and_reports_each_bad_one_in_order():
    payload = (
        f'[{{"bn":"{BN}","bu":"Cel","n":"air_temp","v":20}},'
        '{"n":"wind","v":3},'
        '{"n":"soil_temp","v":NaN},'
        '{"n":"soil_temp","v":14},'
        '{"n":"air_rh","v":50},'
        '{"n":"air_rh","u":"%RH","v":150},'
        '{"n":"air_rh","u":"%RH","v":55,"t":-40}]'
    ).encode()
    result = decode_telemetry(payload, DEVICE, NOW)
    assert result.readings == [
        Reading("air_temp", NOW_MS, 20.0),
        Reading("soil_temp", NOW_MS, 14.0),
        Reading("air_rh", NOW_MS - 40_000, 55.0),
    ]
    assert [(p.index, p.reason) for p in result.problems] == [
        (1, Reason.UNKNOWN_SENSOR),
        (2, Reason.NOT_FINITE),
        (4, Reason.WRONG_UNIT),
        (5, Reason.OUT_OF_RANGE),
    ]


def test_a_repeated_sensor_and_time_in_one_pack_keeps_the_first_and_says_duplicate_record():
    result = decode(
        [
            {"bn": BN, "bt": NOW, "n": "air_temp", "u": "Cel", "v": 20},
            {"n": "air_rh", "u": "%RH", "v": 55},
            {"n": "air_temp", "u": "Cel", "v": 25},  # same sensor, same time: a second value
            {"n": "air_temp", "u": "Cel", "v": 21, "t": -60},  # same sensor, another time: fine
        ]
    )
    assert result.readings == [
        Reading("air_temp", NOW_MS, 20.0),
        Reading("air_rh", NOW_MS, 55.0),
        Reading("air_temp", NOW_MS - 60_000, 21.0),
    ]
    [problem] = result.problems
    assert (problem.index, problem.reason) == (2, Reason.DUPLICATE_RECORD)
    assert "record 0" in problem.detail and "air_temp" in problem.detail


def test_a_repeat_of_a_refused_record_is_not_a_duplicate_of_anything():
    result = decode(
        [
            {"bn": BN, "n": "air_temp", "u": "Cel", "v": 999},  # out of range: no reading
            {"n": "air_temp", "u": "Cel", "v": 20},
        ]
    )
    assert result.readings == [Reading("air_temp", NOW_MS, 20.0)]
    assert [p.reason for p in result.problems] == [Reason.OUT_OF_RANGE]


def test_a_pack_of_senml_version_5_as_in_rfc_8428_is_decoded():
    result = decode([{"bn": BN, "bver": 5, "n": "air_temp", "u": "Cel", "v": 20}])
    assert result.readings == [Reading("air_temp", NOW_MS, 20.0)] and not result.problems
    assert (
        rejection(
            json.dumps([{"bn": BN, "bver": 11, "n": "air_temp", "u": "Cel", "v": 20}]).encode()
        ).reason
        is Reason.NOT_SENML
    )


# --- robustness ----------------------------------------------------------------------------------

LABELS = ["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"]


def random_json(rng: random.Random, depth: int = 0) -> object:
    kinds = ["null", "bool", "int", "float", "str"] + (["list", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, 10, -1, 2**28, 2**63, 10**30, rng.randrange(-(10**6), 10**6)])
    if kind == "float":
        return rng.choice([1e308, -1e308, 5e-324, NOW, rng.uniform(-1e10, 1e10)])
    if kind == "str":
        return rng.choice(["", BN, "air_temp", "Cel", "%", "urn:dev:agrimatch:", "é\u0000", "aGk"])
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {
        rng.choice([*LABELS, "x_", "zz"]): random_json(rng, depth + 1)
        for _ in range(rng.randrange(0, 5))
    }


def random_record(rng: random.Random, first: bool) -> dict[str, object]:
    """A valid record, then a few random mutations: a label set to anything, or dropped."""
    spec = rng.choice(list(SENSORS.values()))
    record: dict[str, object] = {"n": spec.name, "u": spec.unit, "v": spec.minimum}
    if first:
        record |= {"bn": BN, "bt": NOW}
    if rng.random() < 0.5:
        record["t"] = -rng.uniform(0, 1e6)
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        label = rng.choice([*LABELS, "x_", "zz"])
        if label in record and rng.random() < 0.3:
            del record[label]
        else:
            record[label] = random_json(rng)
    return record


def assert_only_rejections(payload: bytes) -> None:
    try:
        result = decode_telemetry(payload, DEVICE, NOW)
    except MessageRejected as error:
        assert isinstance(error.reason, Reason) and error.detail
        return
    assert all(isinstance(r, Reading) and isinstance(r.time_ms, int) for r in result.readings)
    assert all(isinstance(p.reason, Reason) and p.detail for p in result.problems)


def test_random_bytes_only_ever_raise_message_rejected():
    rng = random.Random(1)
    seeds = [b"[", b"{", b'[{"v":', b"NaN", b"\xff", b'"', b"]", b"1e999", b",", b"}"]
    for _ in range(2000):
        if rng.random() < 0.5:
            payload = rng.randbytes(rng.randrange(0, 64))
        else:
            payload = b"".join(rng.choice(seeds) for _ in range(rng.randrange(0, 12)))
        assert_only_rejections(payload)


def test_random_json_structures_only_ever_raise_message_rejected():
    rng = random.Random(2)
    for _ in range(2000):
        assert_only_rejections(json.dumps(random_json(rng)).encode())


def test_random_senml_like_packs_only_ever_raise_message_rejected():
    rng = random.Random(3)
    specials = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 400]
    for _ in range(3000):
        records = [random_record(rng, k == 0) for k in range(rng.randrange(1, 6))]
        text = json.dumps(records)
        if rng.random() < 0.3:  # splice in the numbers Python's json accepts but JSON has not
            special = rng.choice(specials)
            text = re.sub(r'("(?:v|t|bt|bv)": )[-0-9.e+]+', rf"\g<1>{special}", text, count=1)
        assert_only_rejections(text.encode())
