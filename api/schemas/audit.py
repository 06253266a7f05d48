"""The audit log as admins read it. Apart from the registry's table."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AuditEntryPublic(BaseModel):
    """One admin action: who did what to what, when."""

    id: int
    at: datetime
    actor: str = Field(description="the key's name and id, or cli:<user>")
    action: str = Field(
        description="key.create, key.revoke, device.provision, device.config, "
        "farm.create, farm.delete, field.create or field.delete"
    )
    target: str
    detail: str | None
