"""Operations: liveness, readiness and job runs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

CheckState = Literal["ok", "unavailable", "not configured"]


class Health(BaseModel):
    status: Literal["alive"] = "alive"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, CheckState] = Field(description="store, registry and broker")


class JobRunPublic(BaseModel):
    """One run of a scheduled or manual job."""

    id: int
    job: str
    as_of: date | None
    started_at: datetime
    ended_at: datetime | None
    status: str
    model_version: str | None
    metrics: dict[str, Any] | None
    error: str | None
