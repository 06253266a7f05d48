"""MQTT topic names: ``agrimatch/v1/{farm}/{field}/{device}/{kind}``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "agrimatch/v1"
ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
TELEMETRY_SUBSCRIPTION = f"{PREFIX}/+/+/+/telemetry"
# Shared subscription: N ingest replicas split the load, the broker does the balancing.
INGEST_SHARED_SUBSCRIPTION = f"$share/ingest/{TELEMETRY_SUBSCRIPTION}"
DEAD_LETTER_PREFIX = f"{PREFIX}/_dead"


class TopicKind(StrEnum):
    TELEMETRY = "telemetry"
    STATUS = "status"
    CONFIG = "config"


class TopicError(ValueError):
    """A topic that is not one of agrimatch's."""


def check_id(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid farm/field/device id, else raise ``TopicError``."""
    if not ID_RE.fullmatch(value):
        raise TopicError(f"{kind} id {value!r} must match {ID_RE.pattern}")
    return value


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    """Where a device sits: farm, field and its own id."""

    farm: str
    field: str
    device: str

    def __post_init__(self) -> None:
        check_id("farm", self.farm)
        check_id("field", self.field)
        check_id("device", self.device)

    def topic(self, kind: TopicKind) -> str:
        return f"{PREFIX}/{self.farm}/{self.field}/{self.device}/{kind.value}"

    @property
    def telemetry_topic(self) -> str:
        return self.topic(TopicKind.TELEMETRY)

    @property
    def status_topic(self) -> str:
        return self.topic(TopicKind.STATUS)

    @property
    def config_topic(self) -> str:
        return self.topic(TopicKind.CONFIG)


def parse_topic(topic: str) -> tuple[DeviceAddress, TopicKind]:
    """Split an agrimatch topic into the device address and the topic kind."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != PREFIX:
        raise TopicError(f"not an agrimatch topic: {topic!r}")
    try:
        kind = TopicKind(parts[5])
    except ValueError:
        raise TopicError(f"unknown topic kind {parts[5]!r} in {topic!r}") from None
    return DeviceAddress(parts[2], parts[3], parts[4]), kind


def dead_letter_topic(reason: str) -> str:
    return f"{DEAD_LETTER_PREFIX}/{reason}"
