"""Farms: list (an agronomist's: its own), create (admin), read, change, delete.

Writes go through :func:`forecasting.imports.import_farms`, the checks a
farms CSV gets: a farm placed in a new region creates the region from it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from agrimatch.registry import audit
from agrimatch.registry.models import Farm
from api.crud import farms_page, holdings, stored_forecasts
from api.deps import AdminKey, ContextDep, ManagerKey, SessionDep
from api.errors import ProblemError
from api.imports import import_one
from api.openapi import responses
from api.pagination import CursorParam, LimitParam, decode_cursor, page
from api.schemas.common import Page
from api.schemas.farms import Deleted, FarmCreate, FarmPublic, FarmUpdate
from api.scope import farm_for_read, farm_for_write, farm_scope
from forecasting.imports import import_farms

log = logging.getLogger(__name__)

router = APIRouter(prefix="/farms", tags=["farms"])

FARM_EXAMPLE = {"farm": "garlic-coop-1", "region": "zhongmou", "lat": 34.7, "lon": 113.9}


def farm_public(farm: Farm) -> FarmPublic:
    return FarmPublic(farm=farm.id, region=farm.region_id, lat=farm.lat, lon=farm.lon)


def _write(session: Session, record: dict[str, Any]) -> None:
    import_one("farm", record, lambda table, dry: import_farms(session, table, dry_run=dry))


@router.get(
    "",
    summary="List farms (an agronomist's: those of its key)",
    response_model=Page[FarmPublic],
    responses=responses({"items": [FARM_EXAMPLE], "next_cursor": None}, 400, 401, 403),
)
def list_farms(
    key: ManagerKey, session: SessionDep, limit: LimitParam = 50, cursor: CursorParam = None
) -> Page[FarmPublic]:
    """Farms by id, a page at a time."""
    position = decode_cursor(cursor, "after")
    rows = farms_page(
        session,
        limit=limit + 1,
        after=position["after"] if position else None,
        farm_ids=farm_scope(key),
    )
    items, next_cursor = page(rows, limit, lambda f: {"after": f.id})
    return Page[FarmPublic](items=[farm_public(f) for f in items], next_cursor=next_cursor)


@router.post(
    "",
    status_code=201,
    summary="Create a farm (admin)",
    response_model=FarmPublic,
    responses=responses(FARM_EXAMPLE, 401, 403, 409, status=201, description="Created"),
)
def create_farm(
    body: FarmCreate, key: AdminKey, context: ContextDep, response: Response
) -> FarmPublic:
    """A farm in a region; a region not in the registry is created from it, named
    ``region_name`` at ``elevation_m`` (which it then needs)."""
    with context.sessions.begin() as session:
        if session.get(Farm, body.farm) is not None:
            raise ProblemError(409, f"farm {body.farm!r} exists; PATCH it to change it")
        _write(session, body.model_dump())
        farm = session.get(Farm, body.farm)
        assert farm is not None  # just imported
        public = farm_public(farm)
        audit.record(
            session, actor=key.label, action="farm.create", target=body.farm, detail=farm.region_id
        )
    log.info("farm %s created by %s", body.farm, key.label)
    response.headers["Location"] = f"/v1/farms/{body.farm}"
    return public


@router.get(
    "/{farm}",
    summary="A farm",
    response_model=FarmPublic,
    responses=responses(FARM_EXAMPLE, 401, 403, 404),
)
def read_farm(farm: str, key: ManagerKey, session: SessionDep) -> FarmPublic:
    """A farm of the key's scope (another reads as absent: 404)."""
    return farm_public(farm_for_read(session, key, farm))


@router.patch(
    "/{farm}",
    summary="Change a farm's region or location",
    response_model=FarmPublic,
    responses=responses(FARM_EXAMPLE, 401, 403, 404),
)
def update_farm(farm: str, body: FarmUpdate, key: ManagerKey, context: ContextDep) -> FarmPublic:
    """Change what is given; moving the farm to a new region creates the region (give
    ``elevation_m``)."""
    with context.sessions.begin() as session:
        row = farm_for_write(session, key, farm)
        record: dict[str, Any] = {
            "farm": row.id,
            "region": row.region_id,
            "lat": row.lat,
            "lon": row.lon,
        }
        record |= body.model_dump(exclude_unset=True)
        _write(session, record)
        session.refresh(row)
        return farm_public(row)


@router.delete(
    "/{farm}",
    summary="Delete a farm with its fields, seasons and devices",
    response_model=Deleted,
    responses=responses(
        {"farm": "garlic-coop-1", "field": None, "fields": 1, "seasons": 3, "devices": 2},
        401,
        403,
        404,
        409,
        description="Deleted; what went with it",
    ),
)
def delete_farm(farm: str, key: ManagerKey, context: ContextDep) -> Deleted:
    """Delete a farm and, with it, its fields, their seasons, devices and device keys.

    A farm with stored forecasts is history of those runs: 409, and nothing is deleted.
    """
    with context.sessions.begin() as session:
        row = farm_for_write(session, key, farm)
        forecasts = stored_forecasts(session, farm)
        if forecasts:
            raise ProblemError(
                409,
                f"farm {farm!r} has {forecasts} stored field forecast(s), part of past runs' "
                "results: it cannot be deleted",
                slug="has-history",
                title="The farm has history",
            )
        deleted = Deleted(farm=farm, field=None, **holdings(session, farm))
        session.delete(row)
        audit.record(
            session,
            actor=key.label,
            action="farm.delete",
            target=farm,
            detail=f"with {deleted.fields} field(s), {deleted.devices} device(s)",
        )
    log.info("farm %s deleted by %s", farm, key.label)
    return deleted
