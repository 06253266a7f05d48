"""Farms (and the regions they lie in) from a table: one row per farm.

Columns (:data:`FARM_COLUMNS`): ``farm, region, lat, lon`` and optionally
``region_name, elevation_m``. A region not in the registry yet is created
from the first row that names it: its name (``region_name``, default the
id), that farm's location and ``elevation_m``, which that row must then
give (a default elevation would be a silent error in every degree-day the
region's fields accumulate). Regions already in the registry are left as
they are. A farm already in the registry is updated to the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from agrimatch.registry import Farm, Region, upsert_rows
from forecasting.imports._csv import CellReader, Column, RawTable, check_columns
from forecasting.imports._report import BadRow, ImportReport, by_line

KIND = "farms"
FARM_COLUMNS = (
    Column("farm", True, "the farm's id", "coop-7"),
    Column("region", True, "the id of the region the farm lies in", "zhongmou"),
    Column("lat", True, "the farm's latitude in decimal degrees north, -90..90", "34.72"),
    Column("lon", True, "the farm's longitude in decimal degrees east, -180..180", "113.98"),
    Column("region_name", False, "the region's display name (a new region)", "Zhongmou, Henan"),
    Column("elevation_m", False, "the region's elevation in metres (a new region)", "90"),
)
# The lowest and highest farmland on Earth, with room: a value outside is a typo.
_ELEVATION_RANGE_M = (-500.0, 6000.0)


@dataclass(frozen=True, slots=True)
class FarmRow:
    """A farm row that reads well on its own."""

    line: int
    farm: str
    region: str
    lat: float
    lon: float
    region_name: str | None
    elevation_m: float | None


def parse_farm_rows(table: RawTable) -> tuple[list[FarmRow], list[BadRow]]:
    """Read every row on its own and check farm ids are not repeated; pure."""
    rows: list[FarmRow] = []
    bad: list[BadRow] = []
    first_line: dict[str, int] = {}
    for raw in table.rows:
        if raw.problem:
            bad.append(BadRow(raw.line, None, raw.problem))
            continue
        cells = CellReader(raw, FARM_COLUMNS)
        farm = cells.identifier("farm")
        region = cells.identifier("region")
        lat = cells.number("lat", low=-90.0, high=90.0)
        lon = cells.number("lon", low=-180.0, high=180.0)
        elevation_m = cells.number(
            "elevation_m", required=False, low=_ELEVATION_RANGE_M[0], high=_ELEVATION_RANGE_M[1]
        )
        if farm is not None:
            if farm in first_line:
                cells.fail("farm", f"repeats line {first_line[farm]}'s farm {farm}: one row a farm")
            else:
                first_line[farm] = raw.line
        bad.extend(cells.problems)
        if cells.problems or farm is None or region is None or lat is None or lon is None:
            continue
        region_name = cells.text("region_name") or None
        rows.append(FarmRow(raw.line, farm, region, lat, lon, region_name, elevation_m))
    return rows, bad


def import_farms(session: Session, table: RawTable, *, dry_run: bool = False) -> ImportReport:
    """Check every row of ``table`` and, when all are good and not ``dry_run``, upsert the
    farms and create their new regions.

    All or nothing: with any bad row nothing is written. Writes in ``session``
    and flushes; the caller commits (``with sessions.begin() as session:``).
    Raises :class:`~forecasting.imports.ImportFormatError` when a required
    column is missing.
    """
    ignored = check_columns(table, KIND, FARM_COLUMNS)
    rows, bad = parse_farm_rows(table)
    names = sorted({row.region for row in rows})
    known = set(session.scalars(select(Region.id).where(Region.id.in_(names))))
    new_regions: dict[str, FarmRow] = {}
    for row in rows:
        if row.region in known or row.region in new_regions:
            continue
        new_regions[row.region] = row
        if row.elevation_m is None:
            bad.append(
                BadRow(
                    row.line,
                    "elevation_m",
                    f"is empty, and region {row.region} is new: give the region's elevation "
                    "in metres on its first row (it is created from that row)",
                )
            )
    counts = {"farms": len(rows), "regions (new)": len(new_regions)}
    if bad:
        return ImportReport(KIND, len(table.rows), by_line(bad), {}, dry_run, ignored)
    if not dry_run:
        region_rows = [
            {
                "id": region,
                "name": row.region_name or region,
                "lat": row.lat,
                "lon": row.lon,
                "elevation_m": row.elevation_m,
            }
            for region, row in new_regions.items()
        ]
        # Existing regions are left as they are: on a conflict (another import at once), nothing.
        upsert_rows(session, Region, region_rows, ["id"], update=[])
        farm_rows = [
            {"id": row.farm, "region_id": row.region, "lat": row.lat, "lon": row.lon}
            for row in rows
        ]
        upsert_rows(session, Farm, farm_rows, ["id"])
    return ImportReport(KIND, len(table.rows), (), counts, dry_run, ignored)
