"""HTTP telemetry: what a device is told about its pack."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RecordRejected(BaseModel):
    """A record of the pack that was not stored (it was dead-lettered), and why."""

    index: int = Field(description="position of the record in the pack, from 0")
    reason: str = Field(description="the dead-letter reason, e.g. out_of_range")
    detail: str


class TelemetryAccepted(BaseModel):
    """The pack was handled: its good readings are stored, its bad records dead-lettered."""

    device: str
    readings_stored: int
    records_rejected: list[RecordRejected]
