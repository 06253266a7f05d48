"""The message contract shared by devices, ingest and the API.

Topics, the canonical sensors and their units, the SenML (RFC 8428) codec and
the reasons a message can be rejected for.
"""

from agrimatch.contract.reasons import Reason
from agrimatch.contract.sensors import SENSORS, SensorSpec
from agrimatch.contract.topics import (
    DEAD_LETTER_PREFIX,
    INGEST_SHARED_SUBSCRIPTION,
    TELEMETRY_SUBSCRIPTION,
    DeviceAddress,
    TopicError,
    TopicKind,
    dead_letter_topic,
    parse_topic,
)

__all__ = [
    "DEAD_LETTER_PREFIX",
    "INGEST_SHARED_SUBSCRIPTION",
    "SENSORS",
    "TELEMETRY_SUBSCRIPTION",
    "DeviceAddress",
    "Reason",
    "SensorSpec",
    "TopicError",
    "TopicKind",
    "dead_letter_topic",
    "parse_topic",
]
