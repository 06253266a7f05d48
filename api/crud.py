"""Registry reads only the API needs (pages, ages, seasons, proposals); writes go through
the kernel and the imports.

Each function takes a ``Session``; none commits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload

from agrimatch.registry.models import (
    CampaignProposal,
    Device,
    Farm,
    Field,
    FieldForecast,
    JobRun,
    Season,
)


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


def farms_page(
    session: Session, *, limit: int, after: str | None = None, farm_ids: Collection[str] | None
) -> list[Farm]:
    """Up to ``limit`` farms by id after ``after``; of ``farm_ids`` when given (a scope)."""
    query = select(Farm).order_by(Farm.id).limit(limit)
    if after is not None:
        query = query.where(Farm.id > after)
    if farm_ids is not None:
        query = query.where(Farm.id.in_(sorted(farm_ids)))
    return list(session.scalars(query))


def fields_page(
    session: Session,
    *,
    limit: int,
    after: tuple[str, str] | None = None,
    farm_ids: Collection[str] | None = None,
    farm_id: str | None = None,
) -> list[Field]:
    """Up to ``limit`` fields by (farm, field) after ``after``; of ``farm_ids`` (a scope) and
    ``farm_id`` when given. Each field's ``farm`` is loaded."""
    query = (
        select(Field)
        .options(joinedload(Field.farm))
        .order_by(Field.farm_id, Field.field_id)
        .limit(limit)
    )
    if after is not None:
        farm, field = after
        # Spelled out rather than a row-value comparison, which not every SQLite has.
        query = query.where(
            or_(Field.farm_id > farm, and_(Field.farm_id == farm, Field.field_id > field))
        )
    if farm_ids is not None:
        query = query.where(Field.farm_id.in_(sorted(farm_ids)))
    if farm_id is not None:
        query = query.where(Field.farm_id == farm_id)
    return list(session.scalars(query).unique())


def newest_seasons(session: Session, fields: Sequence[Field]) -> dict[tuple[str, str], Season]:
    """The newest season (highest year) of each of ``fields``, by (farm, field)."""
    farms = sorted({f.farm_id for f in fields})
    wanted = {(f.farm_id, f.field_id) for f in fields}
    newest: dict[tuple[str, str], Season] = {}
    query = select(Season).where(Season.farm_id.in_(farms)).order_by(Season.year)
    for season in session.scalars(query):
        key = (season.farm_id, season.field_id)
        if key in wanted:
            newest[key] = season  # ordered by year: the last one wins
    return newest


def field_seasons(session: Session, farm_id: str, field_id: str) -> list[Season]:
    """A field's seasons, oldest first."""
    query = (
        select(Season)
        .where(Season.farm_id == farm_id, Season.field_id == field_id)
        .order_by(Season.year)
    )
    return list(session.scalars(query))


def stored_forecasts(session: Session, farm_id: str, field_id: str | None = None) -> int:
    """How many stored field forecasts name the farm (or its field): history a delete
    must not take with it."""
    query = select(func.count(FieldForecast.id)).where(FieldForecast.farm_id == farm_id)
    if field_id is not None:
        query = query.where(FieldForecast.field_id == field_id)
    return int(session.scalar(query) or 0)


def platform_proposals(session: Session, platform_id: str) -> list[CampaignProposal]:
    """The platform's answered proposals, by campaign start."""
    query = (
        select(CampaignProposal)
        .where(CampaignProposal.platform_id == platform_id)
        .order_by(CampaignProposal.start_on, CampaignProposal.crop, CampaignProposal.region_id)
    )
    return list(session.scalars(query))


def get_proposal(
    session: Session, platform_id: str, crop: str, region_id: str, start_on: date
) -> CampaignProposal | None:
    """The platform's answer to the campaign of ``crop`` in ``region_id`` from ``start_on``."""
    return session.scalar(
        select(CampaignProposal).where(
            CampaignProposal.platform_id == platform_id,
            CampaignProposal.crop == crop,
            CampaignProposal.region_id == region_id,
            CampaignProposal.start_on == start_on,
        )
    )


def holdings(session: Session, farm_id: str, field_id: str | None = None) -> dict[str, int]:
    """How many fields, seasons and devices the farm (or its field) has: what deleting it
    deletes with it."""
    counts = {}
    for name, model in (("fields", Field), ("seasons", Season), ("devices", Device)):
        query = select(func.count()).select_from(model).where(model.farm_id == farm_id)
        if field_id is not None:
            query = query.where(model.field_id == field_id)
        counts[name] = int(session.scalar(query) or 0)
    return counts
