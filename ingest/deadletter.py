"""Dead letters: messages (or records) that can never be valid, with the reason.

They go to ``agrimatch/v1/_dead/{reason}`` carrying the original topic, so
nothing is silently dropped and an operator can see what was refused and why.

A dead letter is bounded in size whatever the input: a letter that grows
with its message could be larger than the broker accepts (or than MQTT can
carry at all), and then the letter, not the message, would stall ingest. So a
letter keeps the payload's size, its SHA-256 digest and its first
:data:`PAYLOAD_PREFIX_BYTES` bytes (the whole payload when it is that small),
the first :data:`RECORDS_KEPT` record problems and their count, and says
``"truncated": true`` when it cut anything. The digest identifies the
original for a replay from the device's or the broker's side.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agrimatch.clock import to_datetime
from agrimatch.contract.reasons import Reason
from agrimatch.contract.topics import dead_letter_topic

PAYLOAD_PREFIX_BYTES = 1024
"""How much of the payload a letter keeps: a whole telemetry pack of a few sensors."""
RECORDS_KEPT = 20
"""Record problems a letter lists; ``records_total`` counts them all."""
DETAIL_MAX_CHARS = 500
RECORD_DETAIL_MAX_CHARS = 300
TOPIC_MAX_CHARS = 300
MAX_LETTER_BYTES = 16 * 1024
"""What the bounds above add up to, with room to spare: no letter's JSON is larger."""

_CUT = "…"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message (or the refused records of one), already cut to its bounds.

    Build it with :meth:`of`, which does the cutting; ``payload_bytes`` and
    ``payload_sha256`` describe the whole original payload.
    """

    reason: Reason
    detail: str
    topic: str
    payload_prefix: bytes
    payload_bytes: int
    payload_sha256: str
    received_at: float
    records: tuple[Mapping[str, Any], ...] = ()
    records_total: int = 0
    truncated: bool = False

    @classmethod
    def of(
        cls,
        reason: Reason,
        detail: str,
        topic: str,
        payload: bytes,
        received_at: float,
        records: Iterable[Mapping[str, Any]] = (),
    ) -> DeadLetter:
        """The letter for ``payload`` refused for ``reason``, every part within its bound."""
        kept: list[Mapping[str, Any]] = []
        total = 0
        cut = False
        for record in records:
            total += 1
            if len(kept) < RECORDS_KEPT:
                bounded, record_cut = _bounded_record(record)
                kept.append(bounded)
                cut = cut or record_cut
        detail, detail_cut = _clip(detail, DETAIL_MAX_CHARS)
        topic, topic_cut = _clip(topic, TOPIC_MAX_CHARS)
        return cls(
            reason=reason,
            detail=detail,
            topic=topic,
            payload_prefix=payload[:PAYLOAD_PREFIX_BYTES],
            payload_bytes=len(payload),
            payload_sha256=hashlib.sha256(payload).hexdigest(),
            received_at=received_at,
            records=tuple(kept),
            records_total=total,
            truncated=(
                cut
                or detail_cut
                or topic_cut
                or total > RECORDS_KEPT
                or len(payload) > PAYLOAD_PREFIX_BYTES
            ),
        )

    @property
    def dead_topic(self) -> str:
        return dead_letter_topic(self.reason.value)

    def to_json(self) -> bytes:
        """The dead-letter message body (at most :data:`MAX_LETTER_BYTES`).

        The payload (prefix) travels as UTF-8 text when it is text, else as
        base64: JSON escapes each control byte as six characters, so 1 KiB of
        binary would grow sixfold, where base64 grows it by a third.
        """
        body, encoding = _payload_text(self.payload_prefix, self.payload_bytes)
        doc = {
            "reason": self.reason.value,
            "detail": self.detail,
            "topic": self.topic,
            "payload": body,
            "payload_encoding": encoding,
            "payload_bytes": self.payload_bytes,
            "payload_sha256": self.payload_sha256,
            "truncated": self.truncated,
            "received_at": to_datetime(self.received_at).isoformat(),
            "records": [dict(r) for r in self.records],
            "records_total": self.records_total,
        }
        # ensure_ascii=False: non-ASCII text stays as its UTF-8 bytes instead of \\uXXXX.
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _clip(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[: limit - len(_CUT)] + _CUT, True


def _bounded_record(record: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    out: dict[str, Any] = {}
    cut = False
    for key, value in record.items():
        if isinstance(value, str):
            value, value_cut = _clip(value, RECORD_DETAIL_MAX_CHARS)
            cut = cut or value_cut
        out[key] = value
    return out, cut


def _payload_text(prefix: bytes, total: int) -> tuple[str, str]:
    """``(text, "utf-8")`` for printable UTF-8, else ``(base64, "base64")``."""
    try:
        text = prefix.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A prefix cut inside a multi-byte character is still text: drop the partial one.
        if total > len(prefix) and exc.reason == "unexpected end of data":
            text = prefix[: exc.start].decode("utf-8")
        else:
            return base64.b64encode(prefix).decode("ascii"), "base64"
    if any(ord(c) < 0x20 and c not in "\t\n\r" for c in text) or "\x7f" in text:
        return base64.b64encode(prefix).decode("ascii"), "base64"
    return text, "utf-8"


class DeadLetterSink(Protocol):
    def send(self, letters: Sequence[DeadLetter], stop: threading.Event) -> bool:
        """Deliver ``letters`` durably; True once all are accepted, False if stopped first."""
        ...


class MemoryDeadLetterSink:
    """Keeps dead letters in memory (unit tests, and callers that report them directly)."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def send(self, letters: Sequence[DeadLetter], stop: threading.Event) -> bool:
        self.letters.extend(letters)
        return True
