"""The message contract shared by devices, ingest and the API.

Topics, the canonical sensors and their units, the SenML (RFC 8428) codec and
the reasons a message can be rejected for.
"""

from agrimatch.contract.reasons import Reason
from agrimatch.contract.sensors import SENSORS, SensorSpec
from agrimatch.contract.telemetry import (
    BASE_NAME_PREFIX,
    MAX_PAYLOAD_BYTES,
    DecodedTelemetry,
    MessageRejected,
    Reading,
    RecordProblem,
    TimeLimits,
    base_name,
    decode_telemetry,
    encode_telemetry,
)
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
    "BASE_NAME_PREFIX",
    "DEAD_LETTER_PREFIX",
    "INGEST_SHARED_SUBSCRIPTION",
    "MAX_PAYLOAD_BYTES",
    "SENSORS",
    "TELEMETRY_SUBSCRIPTION",
    "DecodedTelemetry",
    "DeviceAddress",
    "MessageRejected",
    "Reading",
    "Reason",
    "RecordProblem",
    "SensorSpec",
    "TimeLimits",
    "TopicError",
    "TopicKind",
    "base_name",
    "dead_letter_topic",
    "decode_telemetry",
    "encode_telemetry",
    "parse_topic",
]
