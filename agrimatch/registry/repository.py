"""Data access for the registry: what forecasting, the API and the CLI call.

Every function takes a ``Session`` and leaves the transaction to the caller
(``with factory.begin() as session:``): functions flush, never commit.
Upserts are ``INSERT ... ON CONFLICT`` statements (SQLite and PostgreSQL both
have them), so loading the same scenario twice, or from two processes at
once, leaves the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from agrimatch.agronomy import CROPS
from agrimatch.agronomy.seasons import planting_date
from agrimatch.contract.topics import ID_RE
from agrimatch.registry.db import RegistryError
from agrimatch.registry.models import (
    Base,
    Campaign,
    CampaignSource,
    Crop,
    Device,
    DeviceKind,
    Farm,
    Field,
    Platform,
    Region,
    Season,
)
from agrimatch.scenario import Scenario

DEFAULT_SENSOR_INTERVAL_S = 60.0  # the simulator's default sampling interval
DEFAULT_CAMERA_INTERVAL_S = 3600.0  # a vegetation index changes over days, not minutes


@dataclass(frozen=True, slots=True)
class ScenarioCounts:
    """How many rows of each kind a scenario upsert wrote (inserted or updated)."""

    regions: int
    farms: int
    fields: int
    devices: int
    platforms: int
    seasons: int


@dataclass(frozen=True, slots=True)
class SeasonTruth:
    """What a season turned out to be, recorded once the harvest is in."""

    yield_t_ha: float
    quantity_t: float
    harvest_start: date
    harvest_peak: date
    harvest_end: date
    water_stress: float | None = None  # unitless, 0..1
    heat_stress: float | None = None  # unitless, 0..1

    def __post_init__(self) -> None:
        if self.yield_t_ha < 0 or self.quantity_t < 0:
            raise ValueError("yield_t_ha and quantity_t must not be negative")
        if not self.harvest_start <= self.harvest_peak <= self.harvest_end:
            raise ValueError(
                f"harvest dates out of order: start {self.harvest_start}, "
                f"peak {self.harvest_peak}, end {self.harvest_end}"
            )
        for name in ("water_stress", "heat_stress"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} must be within 0..1, got {value}")


class CampaignFacts(Protocol):
    """What a campaign row is written from: a scenario's ``CampaignPlan`` is one.

    ``uplift`` must be above 0 and ``hangover`` within [0, 1) (the table's checks).
    """

    @property
    def platform(self) -> str: ...
    @property
    def crop(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def start(self) -> date: ...
    @property
    def end(self) -> date: ...
    @property
    def uplift(self) -> float: ...
    @property
    def hangover(self) -> float: ...


# -- ids ---------------------------------------------------------------------


def device_ids(
    farm_id: str, field_id: str, *, sensors: int, camera: bool
) -> list[tuple[str, DeviceKind]]:
    """Ids of a field's devices: ``{farm}-{field}-d{n}`` (n from 1), then ``{farm}-{field}-cam``.

    Raises ``RegistryError`` when an id would not be a valid device id (too
    long: farm and field ids together leave room for the suffix only up to 64
    characters).
    """
    ids: list[tuple[str, DeviceKind]] = [
        (f"{farm_id}-{field_id}-d{n}", "sensor") for n in range(1, sensors + 1)
    ]
    if camera:
        ids.append((f"{farm_id}-{field_id}-cam", "camera"))
    for device_id, _kind in ids:
        if not ID_RE.fullmatch(device_id):
            raise RegistryError(
                f"device id {device_id!r} ({len(device_id)} characters) is not a valid id "
                f"({ID_RE.pattern}): shorten farm {farm_id!r} or field {field_id!r}"
            )
    return ids


# -- upserts -------------------------------------------------------------------


_INSERTS: dict[str, Callable[[type[Base]], Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def _upsert(
    session: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    update: Sequence[str] | None = None,
    only_where: ColumnElement[bool] | None = None,
) -> None:
    """INSERT rows; on a key conflict update the ``update`` columns (default: all but keys)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = _INSERTS.get(dialect)
    if insert is None:
        raise RegistryError(f"the registry supports SQLite and PostgreSQL, not {dialect}")
    stmt = insert(model)
    columns = update if update is not None else [c for c in rows[0] if c not in keys]
    if columns:
        upsert = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: stmt.excluded[c] for c in columns},
            where=only_where,
        )
    else:
        upsert = stmt.on_conflict_do_nothing(index_elements=list(keys))
    session.execute(upsert, list(rows))


def upsert_rows(
    session: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    update: Sequence[str] | None = None,
    only_where: ColumnElement[bool] | None = None,
) -> None:
    """INSERT ``rows`` into ``model``'s table; where ``keys`` conflict, update the ``update``
    columns (default: all the rows give but the keys), only where ``only_where`` holds.

    Idempotent and safe from two processes at once, like the upserts here; for
    writers outside this module (the CSV imports). Expires the session's
    objects, since Core statements bypass them.
    """
    _upsert(session, model, rows, keys, update=update, only_where=only_where)
    session.expire_all()


def sync_crops(session: Session) -> int:
    """Write the agronomy crop catalog into the ``crops`` table; returns the number of crops."""
    rows = [{"name": c.name, "perennial": c.perennial} for c in CROPS.values()]
    _upsert(session, Crop, rows, ["name"])
    return len(rows)


def upsert_scenario(
    session: Session,
    scenario: Scenario,
    *,
    sensor_interval_s: float = DEFAULT_SENSOR_INTERVAL_S,
    camera_interval_s: float = DEFAULT_CAMERA_INTERVAL_S,
) -> ScenarioCounts:
    """Write a scenario's regions, farms (groups expanded), fields, devices, platforms and
    its seasons' plans; idempotent.

    Existing rows are updated to the scenario. A season whose truth is recorded
    keeps its plan. Nothing is deleted: a device or farm the scenario no longer
    names stays. Campaigns are separate: ``record_campaigns(session,
    scenario.campaigns)``.
    """
    sync_crops(session)
    farms = scenario.all_farms()
    regions = [
        {"id": r.id, "name": r.name, "lat": r.lat, "lon": r.lon, "elevation_m": r.elevation_m}
        for r in scenario.regions
    ]
    farm_rows = [{"id": f.id, "region_id": f.region, "lat": f.lat, "lon": f.lon} for f in farms]
    field_rows: list[dict[str, Any]] = []
    device_rows: list[dict[str, Any]] = []
    season_rows: list[dict[str, Any]] = []
    years = range(scenario.first_season, scenario.first_season + scenario.seasons)
    for farm in farms:
        for plan in farm.fields:
            key = {"farm_id": farm.id, "field_id": plan.id}
            field_rows.append(
                key
                | {
                    "crop": plan.crop,
                    "area_ha": plan.area_ha,
                    "planting_month_day": plan.planting,
                    "soil": plan.soil,
                    # Scenarios place fields at their farm.
                    "lat": farm.lat,
                    "lon": farm.lon,
                }
            )
            for device_id, kind in device_ids(
                farm.id, plan.id, sensors=plan.devices, camera=plan.camera
            ):
                interval_s = sensor_interval_s if kind == "sensor" else camera_interval_s
                device_rows.append({"id": device_id, "kind": kind, "interval_s": interval_s} | key)
            season_rows.extend(
                key
                | {
                    "year": year,
                    "crop": plan.crop,
                    "planted_on": planting_date(plan.crop, plan.planting, year),
                    "area_ha": plan.area_ha,
                }
                for year in years
            )
    platforms = [
        {"id": p.id, "name": p.name, "campaign_lead_days": p.campaign_lead_days}
        for p in scenario.platforms
    ]
    _upsert(session, Region, regions, ["id"])
    _upsert(session, Farm, farm_rows, ["id"])
    _upsert(session, Field, field_rows, ["farm_id", "field_id"])
    _upsert(session, Device, device_rows, ["id"])
    _upsert(session, Platform, platforms, ["id"])
    _upsert(
        session,
        Season,
        season_rows,
        ["farm_id", "field_id", "year"],
        # Truth was measured on the season as planned: keep that plan.
        only_where=Season.yield_t_ha.is_(None),
    )
    session.expire_all()  # Core upserts bypass the identity map
    return ScenarioCounts(
        regions=len(regions),
        farms=len(farm_rows),
        fields=len(field_rows),
        devices=len(device_rows),
        platforms=len(platforms),
        seasons=len(season_rows),
    )


# -- seasons -------------------------------------------------------------------


def record_season_truth(
    session: Session,
    farm_id: str,
    field_id: str,
    year: int,
    truth: SeasonTruth,
    *,
    reported_by: str | None = None,
    reported_at: datetime | None = None,
) -> Season:
    """Set the truth of a field's season (replacing any earlier truth), and who reported it.

    A season not planned yet is created from the field's current plan.
    ``reported_at`` defaults to now (UTC); recording the same truth from the
    same reporter again keeps the first ``reported_at``, so a re-import is
    not a new report. Raises ``RegistryError`` for an unknown field.
    """
    season = session.scalar(
        select(Season).where(
            Season.farm_id == farm_id, Season.field_id == field_id, Season.year == year
        )
    )
    if season is None:
        field = get_field(session, farm_id, field_id)
        if field is None:
            raise RegistryError(f"no field {field_id!r} on farm {farm_id!r}")
        season = Season(
            farm_id=farm_id,
            field_id=field_id,
            year=year,
            crop=field.crop,
            planted_on=planting_date(field.crop, field.planting_month_day, year),
            area_ha=field.area_ha,
        )
        session.add(season)
    same_report = (
        season.reported_at is not None
        and season.reported_by == reported_by
        and _truth_of(season) == truth
    )
    if not same_report:
        season.reported_by = reported_by
        season.reported_at = reported_at or datetime.now(UTC)
    season.yield_t_ha = truth.yield_t_ha
    season.quantity_t = truth.quantity_t
    season.harvest_start = truth.harvest_start
    season.harvest_peak = truth.harvest_peak
    season.harvest_end = truth.harvest_end
    season.water_stress = truth.water_stress
    season.heat_stress = truth.heat_stress
    session.flush()
    return season


def _truth_of(season: Season) -> SeasonTruth | None:
    """The truth recorded on ``season``, or None."""
    if (
        season.yield_t_ha is None
        or season.quantity_t is None
        or season.harvest_start is None
        or season.harvest_peak is None
        or season.harvest_end is None
    ):
        return None
    return SeasonTruth(
        yield_t_ha=season.yield_t_ha,
        quantity_t=season.quantity_t,
        harvest_start=season.harvest_start,
        harvest_peak=season.harvest_peak,
        harvest_end=season.harvest_end,
        water_stress=season.water_stress,
        heat_stress=season.heat_stress,
    )


def _season_filters(crop: str | None, region_id: str | None) -> list[ColumnElement[bool]]:
    filters = []
    if crop is not None:
        filters.append(Season.crop == crop)
    if region_id is not None:
        filters.append(Season.farm_id.in_(select(Farm.id).where(Farm.region_id == region_id)))
    return filters


def _select_seasons(*filters: ColumnElement[bool]) -> Select[Any]:
    return (
        select(Season)
        .options(joinedload(Season.field).joinedload(Field.farm))
        .where(*filters)
        .order_by(Season.year, Season.farm_id, Season.field_id)
    )


def list_seasons(
    session: Session,
    *,
    year: int | None = None,
    crop: str | None = None,
    region_id: str | None = None,
    has_truth: bool | None = None,
) -> list[Season]:
    """Seasons by year, crop and region (of the farm), with or without truth; ordered by
    year, farm, field. Each season's ``field`` and ``field.farm`` are loaded."""
    filters = _season_filters(crop, region_id)
    if year is not None:
        filters.append(Season.year == year)
    if has_truth is not None:
        filters.append(Season.yield_t_ha.is_not(None) if has_truth else Season.yield_t_ha.is_(None))
    return list(session.scalars(_select_seasons(*filters)).unique())


def seasons_with_truth(
    session: Session,
    *,
    crop: str | None = None,
    region_id: str | None = None,
    known_on: date | None = None,
) -> list[Season]:
    """Seasons whose truth is recorded: the training set.

    ``known_on`` keeps only seasons harvested by then (``harvest_end <=
    known_on``), so a backtest "as of" a date trains on nothing from its future.
    """
    filters = [*_season_filters(crop, region_id), Season.yield_t_ha.is_not(None)]
    if known_on is not None:
        filters.append(Season.harvest_end <= known_on)
    return list(session.scalars(_select_seasons(*filters)).unique())


# -- fields and devices ------------------------------------------------------------


def get_field(session: Session, farm_id: str, field_id: str) -> Field | None:
    """The field ``field_id`` of farm ``farm_id``, or None."""
    return session.scalar(select(Field).where(Field.farm_id == farm_id, Field.field_id == field_id))


def find_fields(
    session: Session,
    *,
    crop: str | None = None,
    region_id: str | None = None,
    farm_id: str | None = None,
) -> list[Field]:
    """Fields by crop, region (of the farm) and farm; ordered by farm, field. ``farm`` is loaded."""
    query = select(Field).join(Field.farm).options(joinedload(Field.farm))
    if crop is not None:
        query = query.where(Field.crop == crop)
    if region_id is not None:
        query = query.where(Farm.region_id == region_id)
    if farm_id is not None:
        query = query.where(Field.farm_id == farm_id)
    return list(session.scalars(query.order_by(Field.farm_id, Field.field_id)).unique())


def get_device(session: Session, device_id: str) -> Device | None:
    """The device ``device_id``, or None."""
    return session.get(Device, device_id)


def list_devices(
    session: Session, *, farm_id: str | None = None, field_id: str | None = None
) -> list[Device]:
    """Devices, of one farm (and field) if given; ordered by id."""
    query = select(Device)
    if farm_id is not None:
        query = query.where(Device.farm_id == farm_id)
    if field_id is not None:
        query = query.where(Device.field_id == field_id)
    return list(session.scalars(query.order_by(Device.id)))


# -- campaigns -----------------------------------------------------------------


def record_campaigns(
    session: Session, plans: Iterable[CampaignFacts], *, source: CampaignSource = "history"
) -> list[Campaign]:
    """Write campaigns (history, or recommendations); idempotent, keyed by platform, crop,
    region, start and source. Returns their rows, in the order given.

    A campaign already recorded gets the given end, uplift and hangover; its
    outcome is kept. Platform and region must exist (``upsert_scenario``).
    """
    if source not in ("history", "recommended"):
        raise ValueError(f"source must be 'history' or 'recommended', got {source!r}")
    plans = list(plans)
    if not plans:
        return []
    sync_crops(session)
    rows = [
        {
            "platform_id": p.platform,
            "crop": p.crop,
            "region_id": p.region,
            "start_on": p.start,
            "end_on": p.end,
            "uplift": p.uplift,
            "hangover": p.hangover,
            "source": source,
        }
        for p in plans
    ]
    _upsert(
        session,
        Campaign,
        rows,
        ["platform_id", "crop", "region_id", "start_on", "source"],
        update=["end_on", "uplift", "hangover"],
    )
    session.expire_all()
    recorded = []
    for row in rows:
        campaign = session.scalar(
            select(Campaign).where(
                and_(
                    Campaign.platform_id == row["platform_id"],
                    Campaign.crop == row["crop"],
                    Campaign.region_id == row["region_id"],
                    Campaign.start_on == row["start_on"],
                    Campaign.source == source,
                )
            )
        )
        assert campaign is not None  # just upserted in this transaction
        recorded.append(campaign)
    return recorded


def record_campaign_outcome(
    session: Session, campaign_id: int, *, volume_kg: float, absorbed_kg: float | None = None
) -> Campaign:
    """Set what a campaign sold (``volume_kg``) and how much surplus it cleared (``absorbed_kg``).

    ``absorbed_kg`` None keeps what is recorded: sales history tells what sold,
    not whether it would otherwise have gone unsold. Raises ``RegistryError``
    for an unknown campaign.
    """
    if volume_kg < 0 or (absorbed_kg is not None and absorbed_kg < 0):
        raise ValueError("volume_kg and absorbed_kg must not be negative")
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise RegistryError(f"no campaign {campaign_id}")
    campaign.volume_kg = volume_kg
    if absorbed_kg is not None:
        campaign.absorbed_kg = absorbed_kg
    session.flush()
    return campaign


def list_campaigns(
    session: Session,
    *,
    platform_id: str | None = None,
    crop: str | None = None,
    region_id: str | None = None,
    source: CampaignSource | None = None,
    overlapping: tuple[date, date] | None = None,
) -> list[Campaign]:
    """Campaigns by platform, crop, region and source; ``overlapping=(first, last)`` keeps
    those running on any day of that period. Ordered by start, platform."""
    query = select(Campaign)
    if platform_id is not None:
        query = query.where(Campaign.platform_id == platform_id)
    if crop is not None:
        query = query.where(Campaign.crop == crop)
    if region_id is not None:
        query = query.where(Campaign.region_id == region_id)
    if source is not None:
        query = query.where(Campaign.source == source)
    if overlapping is not None:
        first, last = overlapping
        query = query.where(Campaign.start_on <= last, Campaign.end_on >= first)
    return list(session.scalars(query.order_by(Campaign.start_on, Campaign.platform_id)))
