"""Ingest: telemetry from MQTT (and HTTP, through the same pipeline) into the store.

Public face:
- :class:`TelemetryPipeline` — decode, validate, write, dead-letter, acknowledge;
  transport-independent, so the API pushes HTTP telemetry through it too.
- :class:`MqttIngest` — the MQTT consumer around the pipeline.
"""

from ingest.deadletter import DeadLetter, DeadLetterSink, MemoryDeadLetterSink
from ingest.metrics import IngestMetrics
from ingest.pipeline import BatchReport, InboundMessage, MessageOutcome, TelemetryPipeline

__all__ = [
    "BatchReport",
    "DeadLetter",
    "DeadLetterSink",
    "InboundMessage",
    "IngestMetrics",
    "MemoryDeadLetterSink",
    "MessageOutcome",
    "TelemetryPipeline",
]
