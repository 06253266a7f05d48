"""Registry reads only the API needs (pages and ages); writes go through the kernel.

Each function takes a ``Session``; none commits.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agrimatch.registry.models import Device, JobRun


def devices_page(
    session: Session,
    *,
    limit: int,
    after: str | None = None,
    farm_ids: Collection[str] | None = None,
    farm_id: str | None = None,
) -> list[Device]:
    """Up to ``limit`` devices by id after ``after``; of ``farm_ids`` when given (a scope)."""
    query = select(Device).order_by(Device.id).limit(limit)
    if after is not None:
        query = query.where(Device.id > after)
    if farm_ids is not None:
        query = query.where(Device.farm_id.in_(sorted(farm_ids)))
    if farm_id is not None:
        query = query.where(Device.farm_id == farm_id)
    return list(session.scalars(query))


def job_runs_page(
    session: Session, *, limit: int, before_id: int | None = None, job: str | None = None
) -> list[JobRun]:
    """Up to ``limit`` job runs, newest first (by run id: the order they started)."""
    query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(JobRun.id < before_id)
    if job is not None:
        query = query.where(JobRun.job == job)
    return list(session.scalars(query))


def newest_ok_run_end(session: Session, job: str) -> datetime | None:
    """When the newest successful run of ``job`` ended (UTC), or None if none did."""
    ended = session.scalar(
        select(func.max(JobRun.ended_at)).where(JobRun.job == job, JobRun.status == "ok")
    )
    if ended is None:
        return None
    # SQLite hands back naive datetimes for DateTime(timezone=True); they were written as UTC.
    return ended.replace(tzinfo=UTC) if ended.tzinfo is None else ended
