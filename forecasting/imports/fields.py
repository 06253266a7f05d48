"""Fields and their seasons from a table: one row per field-season.

Columns (:data:`FIELD_COLUMNS`): ``farm, field, crop, area_ha, planted_on,
soil, lat, lon`` and optionally ``season``. A season is named by its harvest
year (:mod:`agrimatch.agronomy.seasons`): garlic sown on 2023-10-05 is
season 2024, maize sown on 2024-04-20 season 2024. ``season`` defaults to
that year, and when given must be it.

Each row becomes a registry ``Season`` (its crop, planting day and area);
the ``Field`` row takes its plan (crop, area, planting month-day) from the
field's latest season in the table, unless the registry already holds a
later season of that field, whose plan then stays. Soil and location belong
to the field, so every row of one field must give the same. The farm must
be in the registry (import farms first). A season whose harvest is recorded
keeps its plan: a row that would change it is a bad row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from agrimatch.agronomy import CROPS, SOILS
from agrimatch.agronomy.seasons import season_year_of
from agrimatch.registry import Farm, Field, Season, sync_crops, upsert_rows
from forecasting.imports._csv import CellReader, Column, RawTable, check_columns
from forecasting.imports._report import BadRow, ImportReport, by_line

KIND = "fields"
FIELD_COLUMNS = (
    Column("farm", True, "the id of a farm in the registry", "coop-7"),
    Column("field", True, "the field's id, unique within its farm", "north"),
    Column("crop", True, "a crop of the catalog", "garlic"),
    Column("area_ha", True, "the sown area in hectares, above 0", "2.5"),
    Column("planted_on", True, "the planting (orchards: bud-break) day", "2023-10-05"),
    Column("soil", True, "a soil texture of the catalog", "loam"),
    Column("lat", True, "the field's latitude in decimal degrees north, -90..90", "34.71"),
    Column("lon", True, "the field's longitude in decimal degrees east, -180..180", "113.95"),
    Column("season", False, "the season's harvest year", "2024"),
)
_MAX_AREA_HA = 10_000.0  # as a scenario's field: a larger one is a typo (m² for ha?)


@dataclass(frozen=True, slots=True)
class FieldSeasonRow:
    """A field-season row that reads well on its own; ``season`` is the harvest year."""

    line: int
    farm: str
    field: str
    season: int
    crop: str
    area_ha: float
    planted_on: date
    soil: str
    lat: float
    lon: float

    @property
    def planting_month_day(self) -> str:
        return self.planted_on.strftime("%m-%d")


def season_of_planting(crop: str, planted_on: date) -> int:
    """The season (harvest year) of a crop planted on ``planted_on``."""
    return season_year_of(crop, planted_on.strftime("%m-%d"), planted_on)


def parse_field_rows(table: RawTable) -> tuple[list[FieldSeasonRow], list[BadRow]]:
    """Read every row on its own; check seasons are not repeated and each field keeps one
    soil and location; pure."""
    rows: list[FieldSeasonRow] = []
    bad: list[BadRow] = []
    for raw in table.rows:
        if raw.problem:
            bad.append(BadRow(raw.line, None, raw.problem))
            continue
        cells = CellReader(raw, FIELD_COLUMNS)
        farm = cells.identifier("farm")
        field = cells.identifier("field")
        crop = cells.choice("crop", CROPS, "crop")
        area_ha = cells.number("area_ha", above=0.0, high=_MAX_AREA_HA)
        planted_on = cells.day("planted_on")
        soil = cells.choice("soil", SOILS, "soil")
        lat = cells.number("lat", low=-90.0, high=90.0)
        lon = cells.number("lon", low=-180.0, high=180.0)
        given = cells.number("season", required=False, low=1900, high=2200)
        season = None
        if crop is not None and planted_on is not None:
            season = season_of_planting(crop, planted_on)
            if given is not None and given != season:
                before_winter = (
                    " is sown before winter, so" if CROPS[crop].sown_before_winter else ""
                )
                cells.fail(
                    "season",
                    f"{cells.text('season')} does not follow from planted_on {planted_on}: "
                    f"{crop}{before_winter} planted then is harvested in {season} (a season is "
                    f"named by its harvest year); write {season} or leave season empty",
                )
        bad.extend(cells.problems)
        if (
            cells.problems
            or farm is None
            or field is None
            or crop is None
            or area_ha is None
            or planted_on is None
            or season is None
            or soil is None
            or lat is None
            or lon is None
        ):
            continue
        rows.append(
            FieldSeasonRow(raw.line, farm, field, season, crop, area_ha, planted_on, soil, lat, lon)
        )
    good, inconsistent = _consistent(rows)
    return good, bad + inconsistent


def _consistent(rows: Sequence[FieldSeasonRow]) -> tuple[list[FieldSeasonRow], list[BadRow]]:
    """Rows that neither repeat a field-season nor disagree with their field's first row."""
    seen: dict[tuple[str, str, int], FieldSeasonRow] = {}
    first: dict[tuple[str, str], FieldSeasonRow] = {}
    good, bad = [], []
    for row in rows:
        key = (row.farm, row.field, row.season)
        if key in seen:
            bad.append(
                BadRow(
                    row.line,
                    None,
                    f"repeats line {seen[key].line}'s farm/field/season "
                    f"{row.farm}/{row.field}/{row.season}: one row a field-season",
                )
            )
            continue
        seen[key] = row
        earlier = first.setdefault((row.farm, row.field), row)
        problems = [
            BadRow(
                row.line,
                column,
                f"{mine} differs from line {earlier.line}'s {theirs} for field {row.field} of "
                f"farm {row.farm}: a field has one {what}, give the same in all its rows",
            )
            for column, mine, theirs, what in (
                ("soil", row.soil, earlier.soil, "soil"),
                ("lat", row.lat, earlier.lat, "location"),
                ("lon", row.lon, earlier.lon, "location"),
            )
            if mine != theirs
        ]
        bad.extend(problems)
        if not problems:
            good.append(row)
    return good, bad


def import_fields(session: Session, table: RawTable, *, dry_run: bool = False) -> ImportReport:
    """Check every row of ``table`` and, when all are good and not ``dry_run``, upsert the
    fields and their seasons' plans (see the module docstring).

    All or nothing: with any bad row nothing is written. Writes in ``session``
    and flushes; the caller commits. Raises
    :class:`~forecasting.imports.ImportFormatError` when a required column is missing.
    """
    ignored = check_columns(table, KIND, FIELD_COLUMNS)
    rows, bad = parse_field_rows(table)
    bad += _check_against_registry(session, rows)
    latest: dict[tuple[str, str], FieldSeasonRow] = {}
    for row in rows:
        key = (row.farm, row.field)
        if key not in latest or row.season > latest[key].season:
            latest[key] = row
    counts = {"fields": len(latest), "seasons": len(rows)}
    if bad:
        return ImportReport(KIND, len(table.rows), by_line(bad), {}, dry_run, ignored)
    if not dry_run:
        sync_crops(session)  # fields and seasons name their crop by a key into the crops table
        _write_fields(session, latest)
        season_rows = [
            {
                "farm_id": row.farm,
                "field_id": row.field,
                "year": row.season,
                "crop": row.crop,
                "planted_on": row.planted_on,
                "area_ha": row.area_ha,
            }
            for row in rows
        ]
        upsert_rows(
            session,
            Season,
            season_rows,
            ["farm_id", "field_id", "year"],
            # A harvest was measured on the season as planned; _check_against_registry
            # refused rows that would change such a plan, so these are the same rows.
            only_where=Season.yield_t_ha.is_(None),
        )
    return ImportReport(KIND, len(table.rows), (), counts, dry_run, ignored)


def _check_against_registry(session: Session, rows: Sequence[FieldSeasonRow]) -> list[BadRow]:
    """Unknown farms, and rows that would change the plan of a season with a harvest."""
    farms = sorted({row.farm for row in rows})
    known = set(session.scalars(select(Farm.id).where(Farm.id.in_(farms))))
    bad = [
        BadRow(
            row.line,
            "farm",
            f"farm {row.farm} is not in the registry: import farms first "
            "(agrimatch import farms), or fix the id",
        )
        for row in rows
        if row.farm not in known
    ]
    keys = [(row.farm, row.field, row.season) for row in rows]
    harvested = {
        (s.farm_id, s.field_id, s.year): s
        for s in _seasons(session, keys)
        if s.yield_t_ha is not None
    }
    for row in rows:
        season = harvested.get((row.farm, row.field, row.season))
        if season is None:
            continue
        if (season.crop, season.planted_on, season.area_ha) != (
            row.crop,
            row.planted_on,
            row.area_ha,
        ):
            bad.append(
                BadRow(
                    row.line,
                    None,
                    f"season {row.season} of field {row.field} of farm {row.farm} has a harvest "
                    f"recorded, measured on {season.crop} planted {season.planted_on} on "
                    f"{season.area_ha:g} ha; its plan cannot change: give those values",
                )
            )
    return bad


def _seasons(session: Session, keys: Sequence[tuple[str, str, int]]) -> list[Season]:
    found: list[Season] = []
    # Chunks: SQLite allows a few thousand bound parameters per statement.
    for start in range(0, len(keys), 300):
        chunk = keys[start : start + 300]
        found += session.scalars(
            select(Season).where(tuple_(Season.farm_id, Season.field_id, Season.year).in_(chunk))
        )
    return found


def _write_fields(session: Session, latest: dict[tuple[str, str], FieldSeasonRow]) -> None:
    """Upsert each field from its latest season in the table; where the registry has a
    later season, only the field's soil and location are updated."""
    registered = {
        (farm, field): year
        for farm, field, year in session.execute(
            select(Season.farm_id, Season.field_id, func.max(Season.year))
            .where(Season.farm_id.in_(sorted({farm for farm, _ in latest})))
            .group_by(Season.farm_id, Season.field_id)
        )
    }
    current: list[dict[str, object]] = []
    older: list[dict[str, object]] = []
    for (farm, field), row in latest.items():
        values = {
            "farm_id": farm,
            "field_id": field,
            "crop": row.crop,
            "area_ha": row.area_ha,
            "planting_month_day": row.planting_month_day,
            "soil": row.soil,
            "lat": row.lat,
            "lon": row.lon,
        }
        later = registered.get((farm, field))
        (older if later is not None and later > row.season else current).append(values)
    keys = ["farm_id", "field_id"]
    upsert_rows(session, Field, current, keys)
    upsert_rows(session, Field, older, keys, update=["soil", "lat", "lon"])
