"""SenML (RFC 8428) JSON: decode packs into resolved records, encode compact packs.

Generic: this module knows nothing of agrimatch's names, units or ranges
(``telemetry.py`` adds those). Decoding applies the base fields the RFC defines
(section 4.1: bn, bt, bu, bv, bs, bver) to the record that carries them and to
every following record until changed, and turns times below 2**28 into absolute
times against a caller-given "now" (section 4.5.3).

Two levels of failure:

* :class:`SenmlError` (and its subclass :class:`NotJsonError`): the pack as a
  whole is unusable. That is the case for anything that breaks the structure
  the base fields rely on: not an array of objects, a base or name/time/unit
  field of the wrong JSON type, an unsupported version, a record without
  exactly one value (or a sum), a label ending in ``_`` (RFC 8428 section 4.4
  says an error MUST be generated), duplicate labels in a record. ``bver``
  must be a positive integer no greater than :data:`VERSION`; older versions
  are read as version 10 (section 4.4 only forbids using newer ones). Once such a
  record is seen the bases of every later record are in doubt, so no record is
  trusted.
* :class:`RecordError`: one record is unusable, the others are fine: an invalid
  resolved name, a value field of the wrong type, or a resolved number that is
  NaN or infinite (Python's json accepts ``NaN``/``Infinity`` and turns
  ``1e999`` into ``inf``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

VERSION = 10
"""The SenML version this codec understands (RFC 8428 section 4.1: the default)."""

RELATIVE_TIME_LIMIT = 2**28
"""Resolved times below this are seconds relative to "now" (RFC 8428 section 4.5.3)."""

# RFC 8428 section 4.5.1: the characters a resolved name may use.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:./_-]*")
# Base64 with the URL-safe alphabet, padding omitted (RFC 8428 section 5); padding tolerated.
_BASE64URL_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}")

# Fields whose wrong JSON type breaks the pack: base fields reach later records,
# and a record without a usable name, time or unit cannot be attributed at all.
_STRING_FIELDS = ("bn", "bu", "n", "u")
_NUMBER_FIELDS = ("bt", "bv", "bs", "t", "ut")
_VALUE_FIELDS = ("v", "vs", "vb", "vd")


class SenmlError(ValueError):
    """The payload is not a SenML JSON pack this codec can use; no record of it is."""


class NotJsonError(SenmlError):
    """The payload is not UTF-8 JSON at all."""


class ProblemKind(StrEnum):
    """Why a single record of an otherwise valid pack is unusable."""

    # The resolved name is empty or breaks RFC 8428 section 4.5.1.
    INVALID_NAME = "invalid_name"
    # v or s not a number, vs not a string, vb not a boolean, vd not base64url.
    WRONG_TYPE = "wrong_type"
    # A resolved value, time, sum or update time is NaN or infinite.
    NOT_FINITE = "not_finite"


@dataclass(frozen=True, slots=True)
class Record:
    """A resolved SenML record (RFC 8428 section 4.6): no base fields, absolute time.

    Exactly one of ``value``, ``string_value``, ``bool_value``, ``data_value`` is
    set, or none of them and ``sum`` is.
    """

    name: str
    time: float  # UTC epoch seconds
    unit: str | None = None
    value: float | None = None  # v, plus the base value
    string_value: str | None = None  # vs
    bool_value: bool | None = None  # vb
    data_value: bytes | None = None  # vd, decoded
    sum: float | None = None  # s, plus the base sum
    update_time: float | None = None  # ut, seconds
    index: int = 0  # position in the decoded pack; ignored when encoding


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record of the pack that could not be resolved into a usable :class:`Record`."""

    index: int  # position in the pack (0-based)
    name: str  # resolved name, as far as it could be resolved ("" if none)
    kind: ProblemKind
    detail: str


@dataclass(frozen=True, slots=True)
class Pack:
    """A decoded pack: the usable records and the unusable ones, each in pack order."""

    records: list[Record]
    problems: list[RecordError]


class _DuplicateKeys(dict[str, Any]):
    """A JSON object that repeated a member name (remembered in ``duplicate``)."""

    duplicate = ""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json silently keeps the last of repeated names; for a record that hides which
    # value the device meant, so mark the object and let the structural check refuse it.
    obj = dict(pairs)
    if len(obj) == len(pairs):  # the common case, checked at C speed
        return obj
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked = _DuplicateKeys(pairs)
            marked.duplicate = key
            return marked
        seen.add(key)
    return obj  # unreachable: a length difference means a repeated key


def parse_json(payload: bytes | str) -> Any:
    """Parse UTF-8 JSON text, raising :class:`NotJsonError` if it is not.

    Every JSON number comes back as a ``float`` (integers too), so that a huge
    integer becomes ``inf`` instead of an exception, and ``bool`` is never
    mistaken for a number.
    """
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotJsonError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    else:
        text = payload
    try:
        return json.loads(text, parse_int=float, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise NotJsonError(f"not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise NotJsonError("not usable JSON: nested too deeply to parse") from None
    except ValueError as exc:  # anything else json refuses
        raise NotJsonError(f"not JSON: {exc}") from None


def decode_pack(payload: bytes | str, now: float) -> Pack:
    """Decode a SenML JSON pack into resolved records.

    ``now`` (UTC epoch seconds) is what relative times are counted from; it is a
    parameter so that callers decide which clock (real or simulated) applies.
    Raises :class:`NotJsonError` if the payload is not UTF-8 JSON and
    :class:`SenmlError` if it is JSON but not a usable SenML pack.
    """
    return resolve_pack(parse_json(payload), now)


def resolve_pack(pack: Any, now: float) -> Pack:
    """Resolve an already parsed pack (the output of :func:`parse_json`)."""
    if not isinstance(pack, list):
        raise SenmlError(f"a SenML pack is a JSON array, got {_json_type(pack)}")
    if not pack:
        raise SenmlError("empty pack: a SenML pack holds at least one record")
    records: list[Record] = []
    problems: list[RecordError] = []
    bases: dict[str, Any] = {}
    for index, raw in enumerate(pack):
        _check_structure(index, raw)
        # Base fields apply to this record and every later one until changed.
        for label in ("bn", "bt", "bu", "bv", "bs"):
            if label in raw:
                bases[label] = raw[label]
        resolved = _resolve(index, raw, bases, now)
        if isinstance(resolved, Record):
            records.append(resolved)
        else:
            problems.append(resolved)
    return Pack(records, problems)


def _check_structure(index: int, raw: Any) -> None:
    where = f"record {index}"
    if not isinstance(raw, dict):
        raise SenmlError(f"{where}: a SenML record is a JSON object, got {_json_type(raw)}")
    if isinstance(raw, _DuplicateKeys):
        raise SenmlError(f"{where}: label {_show(raw.duplicate)} appears more than once")
    for label in raw:
        if label.endswith("_"):
            # RFC 8428 section 4.4: an unknown label ending in '_' MUST be an error.
            raise SenmlError(f"{where}: label {_show(label)} must be understood, and is not")
    for label in _STRING_FIELDS:
        if label in raw and not isinstance(raw[label], str):
            raise SenmlError(f"{where}: {label!r} must be a string, got {_json_type(raw[label])}")
    for label in _NUMBER_FIELDS:
        if label in raw and not isinstance(raw[label], float):
            raise SenmlError(f"{where}: {label!r} must be a number, got {_json_type(raw[label])}")
    if "bver" in raw:
        _check_version(where, raw["bver"])
    present = [label for label in _VALUE_FIELDS if label in raw]
    if len(present) > 1:
        raise SenmlError(f"{where}: has {', '.join(present)}; a record holds exactly one value")
    if not present and "s" not in raw:
        raise SenmlError(f"{where}: has no value (v, vs, vb, vd) and no sum (s)")


def _check_version(where: str, version: Any) -> None:
    # RFC 8428 section 4.4: a reader MUST NOT use a pack of a version greater than the
    # one it understands; older versions (the RFC's own examples carry bver 5) are fine.
    if not isinstance(version, float) or not version.is_integer() or version < 1:
        raise SenmlError(f"{where}: 'bver' must be a positive integer, got {_json_type(version)}")
    if version > VERSION:
        raise SenmlError(
            f"{where}: SenML version bver={version:.0f} is newer than {VERSION}, "
            "the version this codec understands"
        )


def _resolve(
    index: int, raw: dict[str, Any], bases: dict[str, Any], now: float
) -> Record | RecordError:
    name = bases.get("bn", "") + raw.get("n", "")

    def problem(kind: ProblemKind, detail: str) -> RecordError:
        return RecordError(index, name, kind, detail)

    if not _NAME_RE.fullmatch(name):
        what = "is empty" if not name else "has characters RFC 8428 section 4.5.1 forbids"
        return problem(ProblemKind.INVALID_NAME, f"resolved name {_show(name)} {what}")

    wrong_type = _check_value_types(raw)
    if wrong_type:
        return problem(ProblemKind.WRONG_TYPE, f"{_show(name)}: {wrong_type}")

    time = bases.get("bt", 0.0) + raw.get("t", 0.0)
    value = bases.get("bv", 0.0) + raw["v"] if "v" in raw else None
    total = bases.get("bs", 0.0) + raw.get("s", 0.0) if "s" in raw or "bs" in bases else None
    update_time = raw.get("ut")
    given = bases | raw
    for what, number, inputs in (
        ("time", time, ("bt", "t")),
        ("value", value, ("bv", "v")),
        ("sum", total, ("bs", "s")),
        ("update time", update_time, ("ut",)),
    ):
        if number is not None and not math.isfinite(number):
            sources = ", ".join(f"{p}={given[p]!r}" for p in inputs if p in given)
            return problem(
                ProblemKind.NOT_FINITE, f"{_show(name)}: {what} is {number!r} ({sources})"
            )

    if time < RELATIVE_TIME_LIMIT:
        time = now + time
    data = _base64url(raw["vd"]) if "vd" in raw else None
    return Record(
        name=name,
        time=time,
        unit=raw.get("u", bases.get("bu")),
        value=value,
        string_value=raw.get("vs"),
        bool_value=raw.get("vb"),
        data_value=data,
        sum=total,
        update_time=update_time,
        index=index,
    )


def _check_value_types(raw: dict[str, Any]) -> str:
    """Describe the first value field of the wrong type, or return ``""``."""
    expected: dict[str, tuple[type, str]] = {
        "v": (float, "a number"),
        "s": (float, "a number"),
        "vs": (str, "a string"),
        "vb": (bool, "a boolean"),
        "vd": (str, "a base64url string"),
    }
    for label, (kind, description) in expected.items():
        if label in raw and not isinstance(raw[label], kind):
            return f"{label!r} must be {description}, got {_json_type(raw[label])}"
    if "vd" in raw and _base64url(raw["vd"]) is None:
        return f"'vd' must be base64url (RFC 4648 section 5), got {_show(raw['vd'])}"
    return ""


def _base64url(text: str) -> bytes | None:
    if not _BASE64URL_RE.fullmatch(text):
        return None
    stripped = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        return None


def encode_pack(
    records: Sequence[Record], base_name: str = "", base_time: float | None = None
) -> bytes:
    """Encode resolved records as a compact SenML JSON pack (UTF-8 bytes).

    ``base_name`` and ``base_time`` go on the first record only; each record
    carries its name without the base name, its unit, its value and, when it
    differs from the base time, its time relative to it. Relative times are
    written to the microsecond, which hides the float noise of the subtraction
    and keeps the pack short. Raises ``ValueError`` for a record that SenML
    cannot carry (no value, several values, a name outside ``base_name``, a
    non-finite number) or for an empty sequence.
    """
    if not records:
        raise ValueError("a SenML pack holds at least one record")
    pack: list[dict[str, Any]] = []
    for position, record in enumerate(records):
        obj: dict[str, Any] = {}
        if position == 0:
            if base_name:
                obj["bn"] = base_name
            if base_time is not None:
                obj["bt"] = base_time
        if not record.name.startswith(base_name):
            raise ValueError(f"record name {record.name!r} does not start with {base_name!r}")
        if record.name != base_name:
            obj["n"] = record.name[len(base_name) :]
        if record.unit is not None:
            obj["u"] = record.unit
        values = {
            "v": record.value,
            "vs": record.string_value,
            "vb": record.bool_value,
            "vd": _b64(record.data_value),
        }
        present = {label: v for label, v in values.items() if v is not None}
        if len(present) > 1 or (not present and record.sum is None):
            raise ValueError(
                f"record {record.name!r} must have exactly one value (or only a sum), "
                f"has {sorted(present) or 'none'}"
            )
        obj.update(present)
        if record.sum is not None:
            obj["s"] = record.sum
        if base_time is None:
            obj["t"] = record.time
        elif record.time != base_time:
            obj["t"] = round(record.time - base_time, 6)
        if obj.get("t") == 0.0:
            del obj["t"]
        if record.update_time is not None:
            obj["ut"] = record.update_time
        pack.append(obj)
    try:
        text = json.dumps(pack, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError as exc:  # NaN/Infinity are not JSON
        raise ValueError(f"cannot encode a non-finite number as SenML JSON: {exc}") from None
    return text.encode("utf-8")


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _json_type(value: Any) -> str:
    """Name ``value``'s JSON type for an error message (bool before number: bool is an int)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, float | int):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {_show(value)}"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value from the wire, cut short: a payload can be 64 KiB of one string."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
