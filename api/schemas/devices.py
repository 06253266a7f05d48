"""Devices: provisioning, and the config they are sent. Apart from the registry's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from agrimatch.contract.device_config import (
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    Threshold,
    interval_problem,
    threshold_problem,
)
from agrimatch.contract.topics import ID_RE

ID_PATTERN = f"^{ID_RE.pattern}$"


class DeviceCreate(BaseModel):
    """A device to register on an existing field."""

    farm_id: str = Field(pattern=ID_PATTERN, examples=["garlic-coop-1"])
    field_id: str = Field(pattern=ID_PATTERN, examples=["north"])
    kind: Literal["sensor", "camera"] = "sensor"
    id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="default: the next {farm}-{field}-d{n} (sensor) or {farm}-{field}-cam",
    )
    interval_s: float | None = Field(
        default=None, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S, description="default: 60 s, camera 1 h"
    )
    key_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="name of its key; default its id"
    )


class DevicePublic(BaseModel):
    id: str
    farm_id: str
    field_id: str
    kind: str
    interval_s: float
    telemetry_topic: str
    config_topic: str


class NewApiKey(BaseModel):
    """A key just created. ``token`` is shown this once and stored nowhere."""

    id: str
    name: str
    role: str
    token: str = Field(description="Authorization: Bearer <token>; shown only now")


class MqttLogin(BaseModel):
    """The device's broker login. ``password`` is shown this once; only its hash is stored."""

    username: str = Field(description="the device id")
    password: str = Field(
        description="shown only now; the broker knows its hash once "
        "`agrimatch devices provision` has rewritten the password file"
    )


class DeviceCreated(BaseModel):
    device: DevicePublic
    api_key: NewApiKey
    mqtt: MqttLogin


class ThresholdBounds(BaseModel):
    """Alert bounds of one sensor, in its unit; either may be left open."""

    min: float | None = None
    max: float | None = None


class DeviceConfigIn(BaseModel):
    """What a device is to do: sample every ``interval_s``, alert outside the thresholds."""

    interval_s: float = Field(description=f"{MIN_INTERVAL_S:g} s .. {MAX_INTERVAL_S:g} s")
    thresholds: dict[str, ThresholdBounds] = Field(
        default_factory=dict, description="by canonical sensor name"
    )

    @field_validator("interval_s")
    @classmethod
    def _interval(cls, value: float) -> float:
        problem = interval_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: dict[str, ThresholdBounds]) -> dict[str, ThresholdBounds]:
        problems = [
            threshold_problem(sensor, Threshold(bounds.min, bounds.max))
            for sensor, bounds in value.items()
        ]
        problems = [p for p in problems if p]
        if problems:
            raise ValueError("; ".join(problems))
        return value


class DeviceConfigPublic(DeviceConfigIn):
    device: str
    config_topic: str
    updated_at: datetime | None = Field(description="null: never set through the API")
    updated_by: str | None
    published: bool | None = Field(
        default=None,
        description="on PUT: whether it reached the broker (false: no broker configured, "
        "or it was unreachable; the config is stored either way)",
    )
    publish_detail: str | None = None
