"""The audit log of admin actions: written beside the change, in its transaction.

An entry is added in the same session as the change it records, so either
both are committed or neither is. Like the rest of the registry, functions
flush and leave the commit to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from agrimatch.registry.models import AuditEntry

ACTIONS = frozenset(
    {
        "key.create",
        "key.revoke",
        "device.provision",
        "device.config",
        "farm.create",
        "farm.delete",
        "field.create",
        "field.delete",
    }
)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    detail: str | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Add one entry; ``detail`` must hold no secret (the log is read by every admin)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(
        at=now or datetime.now(UTC),
        actor=actor[:200],
        action=action,
        target=target[:200],
        detail=detail,
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session, *, limit: int = 50, before_id: int | None = None
) -> Sequence[AuditEntry]:
    """Newest first, ``limit`` of them, older than entry ``before_id`` if given (a cursor)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return session.scalars(query).all()
