"""Dead letters: messages (or records) that can never be valid, with the reason.

They go to ``agrimatch/v1/_dead/{reason}`` carrying the original topic and
payload, so nothing is silently dropped and an operator can replay a fix.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agrimatch.clock import to_datetime
from agrimatch.contract.reasons import Reason
from agrimatch.contract.topics import dead_letter_topic


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: Reason
    detail: str
    topic: str
    payload: bytes
    received_at: float
    records: Sequence[dict[str, Any]] = field(default_factory=tuple)

    @property
    def dead_topic(self) -> str:
        return dead_letter_topic(self.reason.value)

    def to_json(self) -> bytes:
        """The dead-letter message body; a payload that is not UTF-8 travels as base64."""
        try:
            body, encoding = self.payload.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            body, encoding = base64.b64encode(self.payload).decode("ascii"), "base64"
        doc = {
            "reason": self.reason.value,
            "detail": self.detail,
            "topic": self.topic,
            "payload": body,
            "payload_encoding": encoding,
            "received_at": to_datetime(self.received_at).isoformat(),
            "records": list(self.records),
        }
        return json.dumps(doc, separators=(",", ":")).encode()


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
