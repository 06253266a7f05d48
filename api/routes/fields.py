"""Fields: list (all in scope, or a farm's), create with a season, read, change, delete;
a field's seasons with their truth, and its telemetry in time buckets.

Writes go through :func:`forecasting.imports.import_fields`, the checks a
fields CSV gets: a field row is a field-season, so creating a field plans its
season and a new ``planted_on`` plans another. A field's ``latest`` is its
newest day of telemetry (:mod:`api.readings`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from agrimatch.contract.sensors import SENSORS
from agrimatch.registry import audit
from agrimatch.registry.models import Field, Season
from agrimatch.registry.repository import get_field
from agrimatch.store import TelemetryStore
from api.context import ApiContext
from api.crud import field_seasons, fields_page, holdings, newest_seasons, stored_forecasts
from api.deps import ContextDep, ManagerKey
from api.errors import ProblemError
from api.imports import import_one
from api.openapi import responses
from api.pagination import CursorParam, LimitParam, decode_cursor, page
from api.readings import CHINA, EVERY_MS, MAX_BUCKETS, field_buckets, latest_days
from api.schemas.common import Page
from api.schemas.farms import (
    Deleted,
    Every,
    FieldCreate,
    FieldPublic,
    FieldSeasons,
    FieldTelemetry,
    FieldUpdate,
    LatestReadings,
    SeasonPublic,
    TelemetryPoint,
)
from api.scope import farm_for_read, farm_for_write, farm_scope, field_for_read, field_for_write
from forecasting.imports import import_fields

log = logging.getLogger(__name__)

router = APIRouter(tags=["fields"])

FIELD_EXAMPLE: dict[str, Any] = {
    "farm": "garlic-coop-1",
    "field": "north",
    "region": "zhongmou",
    "crop": "garlic",
    "area_ha": 2.5,
    "planted_on": "2025-10-01",
    "soil": "loam",
    "lat": 34.7,
    "lon": 113.9,
    "latest": {
        "time": "2026-04-14T00:00:00+08:00",
        "readings": {"air_temp": 17.9, "rain": 1.2, "soil_moisture_10cm": 27.5},
    },
}
SEASONS_EXAMPLE = {
    "farm": "garlic-coop-1",
    "field": "north",
    "seasons": [
        {
            "season": 2025,
            "crop": "garlic",
            "planted_on": "2024-10-01",
            "area_ha": 2.5,
            "yield_t_ha": 16.2,
            "quantity_t": 40.5,
            "harvest_start": "2025-05-20",
            "harvest_peak": "2025-05-28",
            "harvest_end": "2025-06-05",
            "water_stress": None,
            "heat_stress": None,
            "reported_by": "coop agronomist (key 3f9a2c7e1b04)",
            "reported_at": "2025-06-07T10:12:00Z",
        }
    ],
}
TELEMETRY_EXAMPLE = {
    "farm": "garlic-coop-1",
    "field": "north",
    "every": "6h",
    "sensors": ["air_temp", "soil_moisture_10cm"],
    "points": [
        {"time": "2026-04-14T00:00:00+08:00", "air_temp": 11.2, "soil_moisture_10cm": 27.9},
        {"time": "2026-04-14T06:00:00+08:00", "air_temp": 16.8, "soil_moisture_10cm": 27.4},
    ],
}
DEFAULT_SPAN = timedelta(days=7)


def field_views(
    session: Session, store: TelemetryStore, now_s: float, fields: Sequence[Field]
) -> list[FieldPublic]:
    """``fields`` as served: each with its newest season's plan and newest telemetry day."""
    seasons = newest_seasons(session, fields)
    latest = latest_days(store, [(f.farm_id, f.field_id) for f in fields], int(now_s * 1000))
    views = []
    for f in fields:
        key = (f.farm_id, f.field_id)
        season = seasons.get(key)
        day = latest.get(key)
        views.append(
            FieldPublic(
                farm=f.farm_id,
                field=f.field_id,
                region=f.farm.region_id,
                crop=season.crop if season else f.crop,
                area_ha=season.area_ha if season else f.area_ha,
                planted_on=season.planted_on if season else None,
                soil=f.soil,
                lat=f.lat,
                lon=f.lon,
                latest=None
                if day is None
                else LatestReadings(time=day.time, readings=day.readings),
            )
        )
    return views


def _page(
    context: ApiContext, rows: list[Field], limit: int, session: Session
) -> Page[FieldPublic]:
    items, next_cursor = page(rows, limit, lambda f: {"farm": f.farm_id, "field": f.field_id})
    views = field_views(session, context.store, context.clock.now(), items)
    return Page[FieldPublic](items=views, next_cursor=next_cursor)


def _after(cursor: str | None) -> tuple[str, str] | None:
    position = decode_cursor(cursor, "farm", "field")
    if position is None:
        return None
    if not all(isinstance(position[k], str) for k in ("farm", "field")):
        raise ProblemError(400, "the cursor is not one this list handed out", slug="bad-cursor")
    return position["farm"], position["field"]


@router.get(
    "/fields",
    summary="All fields of the key's farms, with their newest telemetry day",
    response_model=Page[FieldPublic],
    responses=responses({"items": [FIELD_EXAMPLE], "next_cursor": None}, 400, 401, 403, 503),
)
def list_all_fields(
    key: ManagerKey, context: ContextDep, limit: LimitParam = 50, cursor: CursorParam = None
) -> Page[FieldPublic]:
    """Fields by farm and field, a page at a time; ``latest`` is null for a field with no
    telemetry in the last two years."""
    after = _after(cursor)
    with context.sessions() as session:
        rows = fields_page(session, limit=limit + 1, after=after, farm_ids=farm_scope(key))
        return _page(context, rows, limit, session)


@router.get(
    "/farms/{farm}/fields",
    summary="A farm's fields, with their newest telemetry day",
    response_model=Page[FieldPublic],
    responses=responses({"items": [FIELD_EXAMPLE], "next_cursor": None}, 400, 401, 403, 404, 503),
)
def list_farm_fields(
    farm: str,
    key: ManagerKey,
    context: ContextDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[FieldPublic]:
    """A farm's fields by id, a page at a time."""
    after = _after(cursor)
    with context.sessions() as session:
        farm_for_read(session, key, farm)
        rows = fields_page(session, limit=limit + 1, after=after, farm_id=farm)
        return _page(context, rows, limit, session)


@router.post(
    "/farms/{farm}/fields",
    status_code=201,
    summary="Create a field and its season",
    response_model=FieldPublic,
    responses=responses(
        FIELD_EXAMPLE | {"latest": None}, 401, 403, 404, 409, status=201, description="Created"
    ),
)
def create_field(
    farm: str, body: FieldCreate, key: ManagerKey, context: ContextDep, response: Response
) -> FieldPublic:
    """A field of the farm and its season (named by its harvest year, which ``planted_on``
    gives), checked as a row of a fields import."""
    with context.sessions.begin() as session:
        farm_for_write(session, key, farm)
        if get_field(session, farm, body.field) is not None:
            raise ProblemError(
                409, f"field {body.field!r} of farm {farm!r} exists; PATCH it to change it"
            )
        _write(session, {"farm": farm, **body.model_dump()})
        view = _view(context, session, farm, body.field)
        audit.record(session, actor=key.label, action="field.create", target=f"{farm}/{body.field}")
    log.info("field %s/%s created by %s", farm, body.field, key.label)
    response.headers["Location"] = f"/v1/farms/{farm}/fields/{body.field}"
    return view


@router.get(
    "/farms/{farm}/fields/{field}",
    summary="A field, with its newest telemetry day",
    response_model=FieldPublic,
    responses=responses(FIELD_EXAMPLE, 401, 403, 404, 503),
)
def read_field(farm: str, field: str, key: ManagerKey, context: ContextDep) -> FieldPublic:
    """A field of a farm in the key's scope."""
    with context.sessions() as session:
        field_for_read(session, key, farm, field)
        return _view(context, session, farm, field)


@router.patch(
    "/farms/{farm}/fields/{field}",
    summary="Change a field, or plan another season of it",
    response_model=FieldPublic,
    responses=responses(FIELD_EXAMPLE, 401, 403, 404),
)
def update_field(
    farm: str, field: str, body: FieldUpdate, key: ManagerKey, context: ContextDep
) -> FieldPublic:
    """Change what is given; the rest stays as in the field's newest season. The result is
    the season ``planted_on`` names (the newest one when it is not given), checked as a
    row of a fields import: a season whose harvest is recorded keeps its plan."""
    with context.sessions.begin() as session:
        row = field_for_write(session, key, farm, field)
        season = newest_seasons(session, [row]).get((farm, field))
        record = _current_record(row, season) | body.model_dump(exclude_unset=True)
        if record.get("planted_on") is None:
            raise ProblemError(
                422,
                f"field {field!r} has no season yet: give planted_on",
                slug="validation",
                title="Request validation failed",
                errors=[
                    {
                        "in": "body",
                        "field": "planted_on",
                        "pointer": "#/planted_on",
                        "detail": "required: the field has no season yet",
                    }
                ],
            )
        _write(session, record)
        return _view(context, session, farm, field)


@router.delete(
    "/farms/{farm}/fields/{field}",
    summary="Delete a field with its seasons and devices",
    response_model=Deleted,
    responses=responses(
        {"farm": "garlic-coop-1", "field": "north", "fields": 1, "seasons": 3, "devices": 2},
        401,
        403,
        404,
        409,
        description="Deleted; what went with it",
    ),
)
def delete_field(farm: str, field: str, key: ManagerKey, context: ContextDep) -> Deleted:
    """Delete a field and, with it, its seasons, devices and device keys. A field with
    stored forecasts is history of those runs: 409, and nothing is deleted."""
    with context.sessions.begin() as session:
        row = field_for_write(session, key, farm, field)
        forecasts = stored_forecasts(session, farm, field)
        if forecasts:
            raise ProblemError(
                409,
                f"field {field!r} of farm {farm!r} has {forecasts} stored forecast(s), part of "
                "past runs' results: it cannot be deleted",
                slug="has-history",
                title="The field has history",
            )
        deleted = Deleted(farm=farm, field=field, **holdings(session, farm, field))
        session.delete(row)
        audit.record(
            session,
            actor=key.label,
            action="field.delete",
            target=f"{farm}/{field}",
            detail=f"with {deleted.devices} device(s)",
        )
    log.info("field %s/%s deleted by %s", farm, field, key.label)
    return deleted


@router.get(
    "/farms/{farm}/fields/{field}/seasons",
    summary="A field's seasons, with their harvests and who reported them",
    response_model=FieldSeasons,
    responses=responses(SEASONS_EXAMPLE, 401, 403, 404),
)
def list_seasons(farm: str, field: str, key: ManagerKey, context: ContextDep) -> FieldSeasons:
    """Every season of the field, oldest first."""
    with context.sessions() as session:
        field_for_read(session, key, farm, field)
        seasons = field_seasons(session, farm, field)
        return FieldSeasons(farm=farm, field=field, seasons=[_season(s) for s in seasons])


@router.get(
    "/farms/{farm}/fields/{field}/telemetry",
    summary="A field's readings, averaged per time bucket",
    response_model=FieldTelemetry,
    responses=responses(TELEMETRY_EXAMPLE, 401, 403, 404, 503),
)
def read_telemetry(
    farm: str,
    field: str,
    key: ManagerKey,
    context: ContextDep,
    start: Annotated[
        datetime | None,
        Query(alias="from", description="ISO 8601; no offset: China time. Default: to - 7 days"),
    ] = None,
    end: Annotated[
        datetime | None, Query(alias="to", description="ISO 8601, excluded. Default: now")
    ] = None,
    every: Annotated[Every, Query(description="bucket length")] = "1h",
    sensors: Annotated[
        str | None,
        Query(max_length=1000, description="comma-separated sensors; default: all"),
    ] = None,
) -> FieldTelemetry:
    """The mean of each sensor over every device of the field, per bucket (aligned to
    China midnight); buckets without readings are left out. At most
    2000 buckets a request."""
    names = _sensors(sensors)
    end = _aware(end) if end is not None else datetime.fromtimestamp(context.clock.now(), UTC)
    start = _aware(start) if start is not None else end - DEFAULT_SPAN
    if start >= end:
        raise _query_problem("from", f"from {start.isoformat()} is not before to")
    every_ms = EVERY_MS[every]
    span_ms = (end - start) / timedelta(milliseconds=1)
    buckets = math.ceil(span_ms / every_ms)
    if buckets > MAX_BUCKETS:
        raise _query_problem(
            "every",
            f"every={every} over {end - start} is {buckets} buckets, over {MAX_BUCKETS}: "
            "give a longer every, or a shorter from..to",
        )
    with context.sessions() as session:
        field_for_read(session, key, farm, field)
    rows = field_buckets(
        context.store,
        farm,
        field,
        names,
        int(start.timestamp() * 1000),
        int(end.timestamp() * 1000),
        every_ms,
    )
    return FieldTelemetry(
        farm=farm,
        field=field,
        every=every,
        sensors=names,
        points=[TelemetryPoint(time=b.time, **b.values) for b in rows],
    )


# --- helpers ---------------------------------------------------------------------------


def _write(session: Session, record: dict[str, Any]) -> None:
    import_one(
        "field",
        record,
        lambda table, dry: import_fields(session, table, dry_run=dry),
        in_path=("farm",),
    )


def _view(context: ApiContext, session: Session, farm: str, field: str) -> FieldPublic:
    row = get_field(session, farm, field)
    assert row is not None  # checked or just written
    (view,) = field_views(session, context.store, context.clock.now(), [row])
    return view


def _current_record(row: Field, season: Season | None) -> dict[str, Any]:
    """The field as a fields-import row: its newest season's plan, its soil and place."""
    return {
        "farm": row.farm_id,
        "field": row.field_id,
        "crop": season.crop if season else row.crop,
        "area_ha": season.area_ha if season else row.area_ha,
        "planted_on": season.planted_on if season else None,
        "soil": row.soil,
        "lat": row.lat,
        "lon": row.lon,
    }


def _season(season: Season) -> SeasonPublic:
    reported_at = season.reported_at
    if reported_at is not None and reported_at.tzinfo is None:
        reported_at = reported_at.replace(tzinfo=UTC)  # SQLite drops the zone; stored as UTC
    return SeasonPublic(
        season=season.year,
        crop=season.crop,
        planted_on=season.planted_on,
        area_ha=season.area_ha,
        yield_t_ha=season.yield_t_ha,
        quantity_t=season.quantity_t,
        harvest_start=season.harvest_start,
        harvest_peak=season.harvest_peak,
        harvest_end=season.harvest_end,
        water_stress=season.water_stress,
        heat_stress=season.heat_stress,
        reported_by=season.reported_by,
        reported_at=reported_at,
    )


def _sensors(text: str | None) -> list[str]:
    names = [s.strip() for s in (text or "").split(",") if s.strip()]
    if not names:
        return list(SENSORS)
    unknown = [s for s in names if s not in SENSORS]
    if unknown:
        raise _query_problem(
            "sensors",
            f"unknown sensor {', '.join(map(repr, unknown))} (known: {', '.join(sorted(SENSORS))})",
        )
    return list(dict.fromkeys(names))


def _aware(moment: datetime) -> datetime:
    # A time without an offset is the farms' (China) time, as every time this API gives.
    return moment.replace(tzinfo=CHINA) if moment.tzinfo is None else moment


def _query_problem(name: str, detail: str) -> ProblemError:
    return ProblemError(
        422,
        f"the request is not valid: query.{name}: {detail}",
        slug="validation",
        title="Request validation failed",
        errors=[{"in": "query", "field": name, "pointer": None, "detail": detail}],
    )
