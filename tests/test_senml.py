"""The generic SenML (RFC 8428) JSON codec: resolution of base fields, rejections, encoding."""

from __future__ import annotations

import json
import math

import pytest

from agrimatch.contract.senml import (
    NotJsonError,
    Pack,
    ProblemKind,
    Record,
    SenmlError,
    decode_pack,
    encode_pack,
)

NOW = 1_764_072_000.0  # 2025-11-25 12:00 UTC, the "now" relative times count from


def decode(pack: object, now: float = NOW) -> Pack:
    return decode_pack(json.dumps(pack), now)


def only(pack: Pack) -> Record:
    assert not pack.problems, pack.problems
    assert len(pack.records) == 1
    return pack.records[0]


def summary(pack: Pack) -> list[tuple[str, str | None, float, object]]:
    """(name, unit, time, value) of each record, comparable across equivalent packs."""
    assert not pack.problems, pack.problems
    out: list[tuple[str, str | None, float, object]] = []
    for r in pack.records:
        value = next(
            v for v in (r.value, r.string_value, r.bool_value, r.data_value, r.sum) if v is not None
        )
        out.append((r.name, r.unit, r.time, value))
    return out


# --- RFC 8428 section 5.1 examples ---------------------------------------------------------------


def test_rfc_5_1_1_single_data_point_is_taken_now():
    pack = decode_pack(b'[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]', NOW)
    assert only(pack) == Record("urn:dev:ow:10e2073a01080063", NOW, "Cel", 23.1)


def test_rfc_5_1_2_multiple_data_points_concatenate_base_name_and_name():
    pack = decode_pack(
        b'[{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},'
        b'{"n":"current","u":"A","v":1.2}]',
        NOW,
    )
    assert summary(pack) == [
        ("urn:dev:ow:10e2073a01080063:voltage", "V", NOW, 120.1),
        ("urn:dev:ow:10e2073a01080063:current", "A", NOW, 1.2),
    ]


RFC_5_1_2_TIMED = """[
  {"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,
   "bu":"A","bver":5,
   "n":"voltage","u":"V","v":120.1},
  {"n":"current","t":-5,"v":1.2},
  {"n":"current","t":-4,"v":1.3},
  {"n":"current","t":-3,"v":1.4},
  {"n":"current","t":-2,"v":1.5},
  {"n":"current","t":-1,"v":1.6},
  {"n":"current","v":1.7}
]"""


def test_rfc_5_1_2_timed_example_with_its_older_version_bver_5_is_accepted():
    # RFC 8428 section 4.4 forbids only versions greater than the one understood.
    with_bver = decode_pack(RFC_5_1_2_TIMED, NOW)
    without = decode_pack(RFC_5_1_2_TIMED.replace('"bver":5,', ""), NOW)
    assert summary(with_bver) == summary(without) and len(with_bver.records) == 7


def test_rfc_5_1_2_timed_example_without_bver_resolves_base_time_and_base_unit():
    pack = decode_pack(RFC_5_1_2_TIMED.replace('"bver":5,', ""), NOW)
    bt = 1.276020076001e09
    base = "urn:dev:ow:10e2073a0108006:"
    assert summary(pack) == [
        (base + "voltage", "V", bt, 120.1),
        (base + "current", "A", bt - 5, 1.2),
        (base + "current", "A", bt - 4, 1.3),
        (base + "current", "A", bt - 3, 1.4),
        (base + "current", "A", bt - 2, 1.5),
        (base + "current", "A", bt - 1, 1.6),
        (base + "current", "A", bt, 1.7),
    ]


RFC_5_1_3 = """[
  {"bn":"urn:dev:ow:10e2073a01080063","bt":1.320067464e+09,
   "bu":"%RH","v":20},
  {"u":"lon","v":24.30621},
  {"u":"lat","v":60.07965},
  {"t":60,"v":20.3},
  {"u":"lon","t":60,"v":24.30622},
  {"u":"lat","t":60,"v":60.07965},
  {"t":120,"v":20.7},
  {"u":"lon","t":120,"v":24.30623},
  {"u":"lat","t":120,"v":60.07966},
  {"u":"%EL","t":150,"v":98},
  {"t":180,"v":21.2},
  {"u":"lon","t":180,"v":24.30628},
  {"u":"lat","t":180,"v":60.07967}
]"""

RFC_5_1_4 = """[
  {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067464e+09,"v":20},
  {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067464e+09,"v":24.30621},
  {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067464e+09,"v":60.07965},
  {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067524e+09,"v":20.3},
  {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067524e+09,"v":24.30622},
  {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067524e+09,"v":60.07965},
  {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067584e+09,"v":20.7},
  {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067584e+09,"v":24.30623},
  {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067584e+09,"v":60.07966},
  {"n":"urn:dev:ow:10e2073a01080063","u":"%EL","t":1.320067614e+09,"v":98},
  {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067644e+09,"v":21.2},
  {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067644e+09,"v":24.30628},
  {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067644e+09,"v":60.07967}
]"""


def test_rfc_5_1_3_multiple_measurements_resolve_to_the_rfc_5_1_4_resolved_data():
    resolved = summary(decode_pack(RFC_5_1_3, NOW))
    assert resolved == summary(decode_pack(RFC_5_1_4, NOW))
    assert len(resolved) == 13
    assert resolved[9] == ("urn:dev:ow:10e2073a01080063", "%EL", 1.320067614e09, 98.0)


def test_rfc_5_1_5_multiple_data_types_decode_string_boolean_and_data_values():
    pack = decode_pack(
        b'[{"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":23.1},'
        b'{"n":"label","vs":"Machine Room"},'
        b'{"n":"open","vb":false},'
        b'{"n":"nfv-reader","vd":"aGkgCg"}]',
        NOW,
    )
    temp, label, is_open, reader = pack.records
    assert temp.value == 23.1
    assert (label.string_value, label.value) == ("Machine Room", None)
    assert is_open.bool_value is False
    assert reader.data_value == b"hi \n"
    assert reader.name == "urn:dev:ow:10e2073a01080063:nfv-reader"


def test_rfc_5_1_6_collection_of_resources_changes_base_name_but_keeps_base_time():
    pack = decode_pack(
        b'[{"bn":"2001:db8::2/","bt":1.320078429e+09,"n":"temperature","u":"Cel","v":25.2},'
        b'{"n":"humidity","u":"%RH","v":30},'
        b'{"bn":"2001:db8::1/","n":"temperature","u":"Cel","v":12.3},'
        b'{"n":"humidity","u":"%RH","v":67}]',
        NOW,
    )
    bt = 1.320078429e09
    assert summary(pack) == [
        ("2001:db8::2/temperature", "Cel", bt, 25.2),
        ("2001:db8::2/humidity", "%RH", bt, 30.0),
        ("2001:db8::1/temperature", "Cel", bt, 12.3),
        ("2001:db8::1/humidity", "%RH", bt, 67.0),
    ]


def test_rfc_5_1_7_lights_example_applies_base_unit_and_offsets_from_base_time():
    pack = decode_pack(
        b'[{"bt":1.320078429e+09,"bu":"/","n":"2001:db8::3","v":0.5},'
        b'{"n":"2001:db8::4","v":0.5},'
        b'{"n":"2001:db8::3","t":0.1,"v":0},'
        b'{"n":"2001:db8::4","t":0.1,"v":0}]',
        NOW,
    )
    bt = 1.320078429e09
    assert summary(pack) == [
        ("2001:db8::3", "/", bt, 0.5),
        ("2001:db8::4", "/", bt, 0.5),
        ("2001:db8::3", "/", bt + 0.1, 0.0),
        ("2001:db8::4", "/", bt + 0.1, 0.0),
    ]


def test_rfc_5_1_7_thermostat_example_is_refused_for_its_record_without_a_value():
    # Its first record carries only a base name; RFC 8428 section 4.2 requires
    # exactly one value field (or a sum) in every record, and so does this codec.
    with pytest.raises(SenmlError, match="record 0: has no value"):
        decode_pack(
            b'[{"bn":"urn:dev:ow:10e2073a01080063:"},'
            b'{"n":"temp","u":"Cel","v":23.1},{"n":"heat","u":"/","v":1},'
            b'{"n":"fan","u":"/","v":0}]',
            NOW,
        )


# --- base fields and time ------------------------------------------------------------------------


def test_base_value_is_added_to_the_value():
    record = only(decode([{"bn": "dev:", "bv": 100, "n": "x", "v": 1.5}]))
    assert record.value == 101.5


def test_base_unit_applies_when_a_record_has_no_unit_and_its_own_unit_wins():
    pack = decode([{"bn": "dev:", "bu": "Cel", "n": "a", "v": 1}, {"n": "b", "u": "V", "v": 2}])
    assert [r.unit for r in pack.records] == ["Cel", "V"]


def test_base_sum_is_added_to_the_sum():
    record = only(decode([{"n": "meter", "bs": 1000, "s": 25}]))
    assert (record.sum, record.value) == (1025.0, None)


def test_bases_apply_to_following_records_until_changed_mid_pack():
    pack = decode(
        [
            {"bn": "a:", "bt": 2e9, "bu": "V", "bv": 10, "n": "x", "v": 1},
            {"n": "y", "t": 5, "v": 2},
            {"bn": "b:", "bv": 20, "n": "x", "v": 3},
            {"bt": 3e9, "bu": "A", "n": "y", "v": 4},
            {"n": "z", "t": -1, "v": 5},
        ]
    )
    assert summary(pack) == [
        ("a:x", "V", 2e9, 11.0),
        ("a:y", "V", 2e9 + 5, 12.0),
        ("b:x", "V", 2e9, 23.0),
        ("b:y", "A", 3e9, 24.0),
        ("b:z", "A", 3e9 - 1, 25.0),
    ]


def test_name_may_be_omitted_when_the_base_name_names_the_sensor():
    assert only(decode([{"bn": "urn:dev:ow:1", "v": 1}])).name == "urn:dev:ow:1"


@pytest.mark.parametrize(
    ("bt", "t", "expected"),
    [
        (None, None, NOW),  # no time at all: "now"
        (None, -60.0, NOW - 60),  # seconds before now
        (-3600.0, 30.0, NOW - 3570),  # bt + t is what is relative
        (None, 2.0**28 - 1, NOW + 2**28 - 1),  # just below 2**28: still relative
        (None, 2.0**28, 2.0**28),  # 2**28 and above: absolute
        (2e9, -2e9 + 10, NOW + 10),  # an absolute bt can be cancelled into a relative time
    ],
)
def test_resolved_time_below_2_pow_28_is_relative_to_the_given_now(bt, t, expected):
    record: dict[str, object] = {"n": "x", "v": 1}
    if bt is not None:
        record["bt"] = bt
    if t is not None:
        record["t"] = t
    assert only(decode([record])).time == expected


def test_relative_times_follow_the_now_passed_in_not_the_system_clock():
    assert only(decode([{"n": "x", "t": -1, "v": 1}], now=1e9)).time == 1e9 - 1


def test_unknown_labels_are_ignored():
    assert only(decode([{"n": "x", "v": 1, "foo": [1, {"b": 2}], "ut": 60}])).update_time == 60


def test_integer_and_float_json_numbers_are_the_same_number():
    assert only(decode_pack(b'[{"n":"x","v":20}]', NOW)).value == 20.0


# --- whole-pack rejections -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\xff\xfe[]", id="not-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[{", id="truncated"),
        pytest.param(b"hello", id="text"),
        pytest.param(b"[{'n': 'x'}]", id="single-quotes"),
        pytest.param(b"[" * 50_000 + b"]" * 50_000, id="nested-too-deep"),
    ],
)
def test_payload_that_is_not_utf8_json_raises_not_json(payload):
    with pytest.raises(NotJsonError):
        decode_pack(payload, NOW)


@pytest.mark.parametrize(
    ("pack", "message"),
    [
        pytest.param({"n": "x", "v": 1}, "JSON array", id="object-not-array"),
        pytest.param("x", "JSON array", id="string-not-array"),
        pytest.param([], "empty pack", id="empty-array"),
        pytest.param([{"n": "x", "v": 1}, 3], "record 1: a SenML record is", id="number-record"),
        pytest.param([[{"n": "x", "v": 1}]], "record 0: a SenML record is", id="nested-array"),
        pytest.param([{"bn": 5, "v": 1}], "'bn' must be a string", id="bn-number"),
        pytest.param([{"n": None, "v": 1}], "'n' must be a string", id="n-null"),
        pytest.param([{"n": "x", "u": 1, "v": 1}], "'u' must be a string", id="u-number"),
        pytest.param([{"n": "x", "bu": [], "v": 1}], "'bu' must be a string", id="bu-array"),
        pytest.param([{"n": "x", "bt": "now", "v": 1}], "'bt' must be a number", id="bt-string"),
        pytest.param([{"n": "x", "t": True, "v": 1}], "'t' must be a number", id="t-bool"),
        pytest.param([{"n": "x", "bv": "1", "v": 1}], "'bv' must be a number", id="bv-string"),
        pytest.param([{"n": "x", "bs": {}, "s": 1}], "'bs' must be a number", id="bs-object"),
        pytest.param([{"n": "x", "ut": "1", "v": 1}], "'ut' must be a number", id="ut-string"),
        pytest.param([{"n": "x", "bver": 11, "v": 1}], "bver", id="bver-newer"),
        pytest.param([{"n": "x", "bver": "10", "v": 1}], "bver", id="bver-string"),
        pytest.param([{"n": "x", "v": 1}, {"bver": 11, "n": "y", "v": 1}], "bver", id="bver-late"),
        pytest.param([{"n": "x", "bver": 0, "v": 1}], "bver", id="bver-zero"),
        pytest.param([{"n": "x", "bver": 9.5, "v": 1}], "bver", id="bver-fraction"),
        pytest.param([{"n": "x", "bver": None, "v": 1}], "bver", id="bver-null"),
        pytest.param([{"n": "x"}], "no value", id="no-value"),
        pytest.param([{"n": "x", "u": "V", "t": 1}], "no value", id="only-unit-and-time"),
        pytest.param([{"n": "x", "v": 1, "vs": "1"}], "exactly one value", id="v-and-vs"),
        pytest.param([{"n": "x", "vb": True, "vd": "AA"}], "exactly one value", id="vb-and-vd"),
        pytest.param(
            [{"n": "x", "v": 1, "x_": 1}], "'x_' must be understood", id="must-understand"
        ),
    ],
)
def test_json_that_is_not_a_usable_senml_pack_raises_senml_error(pack, message):
    with pytest.raises(SenmlError, match=message) as raised:
        decode(pack)
    assert not isinstance(raised.value, NotJsonError)


def test_a_record_repeating_a_label_is_refused_rather_than_guessing_which_value_counts():
    with pytest.raises(SenmlError, match="'v' appears more than once"):
        decode_pack(b'[{"n":"x","v":1,"v":2}]', NOW)


@pytest.mark.parametrize("version", [1, 5, 10])
def test_bver_up_to_10_is_accepted(version):
    assert only(decode([{"bver": version, "n": "x", "v": 1}])).value == 1.0


# --- per-record problems -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record_json", "what"),
    [
        pytest.param('{"n":"x","v":NaN}', "value is nan", id="v-NaN"),
        pytest.param('{"n":"x","v":Infinity}', "value is inf", id="v-Infinity"),
        pytest.param('{"n":"x","v":-Infinity}', "value is -inf", id="v-minus-Infinity"),
        pytest.param('{"n":"x","v":1e999}', "value is inf", id="v-huge-float"),
        pytest.param('{"n":"x","v":' + "9" * 400 + "}", "value is inf", id="v-huge-integer"),
        pytest.param('{"n":"x","bv":1e308,"v":1e308}', "value is inf", id="bv-plus-v-overflow"),
        pytest.param('{"n":"x","t":NaN,"v":1}', "time is nan", id="t-NaN"),
        pytest.param('{"n":"x","t":-Infinity,"v":1}', "time is -inf", id="t-minus-Infinity"),
        pytest.param('{"n":"x","s":Infinity}', "sum is inf", id="s-Infinity"),
        pytest.param('{"n":"x","ut":NaN,"v":1}', "update time is nan", id="ut-NaN"),
    ],
)
def test_non_finite_number_is_a_not_finite_problem_of_that_record_only(record_json, what):
    pack = decode_pack(f'[{{"n":"ok","v":1}},{record_json},{{"n":"ok2","v":2}}]', NOW)
    assert [r.name for r in pack.records] == ["ok", "ok2"]
    [problem] = pack.problems
    assert (problem.index, problem.name, problem.kind) == (1, "x", ProblemKind.NOT_FINITE)
    assert what in problem.detail


def test_non_finite_base_value_spoils_every_record_it_applies_to():
    pack = decode_pack(
        b'[{"n":"a","v":1},{"bv":NaN,"n":"b","v":1},{"n":"c","v":2},{"bv":0,"n":"d","v":3}]',
        NOW,
    )
    assert [r.name for r in pack.records] == ["a", "d"]
    assert [(p.index, p.kind) for p in pack.problems] == [
        (1, ProblemKind.NOT_FINITE),
        (2, ProblemKind.NOT_FINITE),
    ]
    assert "bv=nan" in pack.problems[1].detail


@pytest.mark.parametrize(
    ("record", "label"),
    [
        pytest.param({"n": "x", "v": "21.5"}, "'v' must be a number", id="v-string"),
        pytest.param({"n": "x", "v": True}, "'v' must be a number", id="v-bool"),
        pytest.param({"n": "x", "v": None}, "'v' must be a number", id="v-null"),
        pytest.param({"n": "x", "vs": 3}, "'vs' must be a string", id="vs-number"),
        pytest.param({"n": "x", "vb": 1}, "'vb' must be a boolean", id="vb-number"),
        pytest.param({"n": "x", "vd": 1}, "'vd' must be a base64url", id="vd-number"),
        pytest.param({"n": "x", "vd": "a+b/"}, "'vd' must be base64url", id="vd-std-alphabet"),
        pytest.param({"n": "x", "vd": "abcde"}, "'vd' must be base64url", id="vd-bad-length"),
        pytest.param({"n": "x", "s": "1"}, "'s' must be a number", id="s-string"),
    ],
)
def test_value_of_the_wrong_json_type_is_a_wrong_type_problem(record, label):
    pack = decode([{"n": "ok", "v": 1}, record])
    assert [r.name for r in pack.records] == ["ok"]
    [problem] = pack.problems
    assert (problem.index, problem.kind) == (1, ProblemKind.WRONG_TYPE)
    assert label in problem.detail


@pytest.mark.parametrize(
    "record",
    [
        pytest.param({"v": 1}, id="no-name-at-all"),
        pytest.param({"n": "a b", "v": 1}, id="space"),
        pytest.param({"n": "-x", "v": 1}, id="starts-with-dash"),
        pytest.param({"bn": "dev:", "n": "é", "v": 1}, id="non-ascii"),
    ],
)
def test_resolved_name_outside_the_rfc_character_set_is_an_invalid_name_problem(record):
    [problem] = decode([record]).problems
    assert problem.kind is ProblemKind.INVALID_NAME


# --- encoding ------------------------------------------------------------------------------------


def test_encoder_writes_base_name_and_base_time_on_the_first_record_only():
    records = [
        Record("urn:dev:x:air", 1_700_000_000.0, "Cel", 21.5),
        Record("urn:dev:x:rh", 1_700_000_000.0, "%RH", 80.0),
        Record("urn:dev:x:air", 1_699_999_940.0, "Cel", 21.25),
    ]
    encoded = encode_pack(records, base_name="urn:dev:x:", base_time=1_700_000_000.0)
    assert json.loads(encoded) == [
        {"bn": "urn:dev:x:", "bt": 1_700_000_000.0, "n": "air", "u": "Cel", "v": 21.5},
        {"n": "rh", "u": "%RH", "v": 80.0},
        {"n": "air", "u": "Cel", "v": 21.25, "t": -60.0},
    ]
    assert b" " not in encoded  # compact separators


def test_encoded_pack_decodes_back_to_the_same_records():
    records = [
        Record("urn:dev:x:a", 1_700_000_000.25, "Cel", 21.5, index=0),
        Record("urn:dev:x:b", 1_700_000_001.5, None, string_value="label", index=1),
        Record("urn:dev:x:c", 1_699_999_000.0, None, bool_value=True, index=2),
        Record("urn:dev:x:d", 1_700_000_000.0, "B", data_value=b"\x00\xffhi", index=3),
        Record("urn:dev:x:e", 1_700_000_000.0, "J", sum=42.0, update_time=60.0, index=4),
        Record("urn:dev:x:", 1_700_000_000.0, "V", 3.3, index=5),
    ]
    encoded = encode_pack(records, base_name="urn:dev:x:", base_time=1_700_000_000.0)
    decoded = decode_pack(encoded, NOW)
    assert decoded == Pack(records, [])


def test_encoder_without_base_time_writes_absolute_times():
    encoded = encode_pack([Record("a", 1_700_000_000.5, None, 1.0)])
    assert json.loads(encoded) == [{"n": "a", "v": 1.0, "t": 1_700_000_000.5}]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        pytest.param(Record("x", 2e9, None, math.nan), "non-finite", id="nan-value"),
        pytest.param(Record("x", math.inf, None, 1.0), "non-finite", id="inf-time"),
        pytest.param(Record("x", 2e9), "exactly one value", id="no-value"),
        pytest.param(Record("x", 2e9, None, 1.0, "s"), "exactly one value", id="two-values"),
        pytest.param(Record("other:x", 2e9, None, 1.0), "does not start", id="outside-base"),
    ],
)
def test_encoder_refuses_what_senml_json_cannot_carry(record, message):
    with pytest.raises(ValueError, match=message):
        encode_pack([record], base_name="" if record.name == "x" else "mine:", base_time=2e9)


def test_encoder_refuses_an_empty_pack():
    with pytest.raises(ValueError, match="at least one record"):
        encode_pack([])
