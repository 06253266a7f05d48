"""Harvest reports from a table: the truth of field-seasons, what the yield model learns from.

Columns (:data:`HARVEST_COLUMNS`): ``farm, field, season, harvest_start,
harvest_end, reported_by``, one of ``yield_t_ha`` or ``quantity_t`` (the
other is derived from the season's area; given both, they must agree within
1 %), and optionally ``harvest_peak`` (default: the midpoint of the harvest,
rounded down to a day).

The season must be in the registry (import fields first). The harvest must
start after planting and end within two years of it, and the yield must lie
within 0..3 times the crop's potential yield in the catalog
(:attr:`~agrimatch.agronomy.CropSpec.potential_yield_t_ha`): beyond that it
is a unit mistake (kg, or per mu), not a record. A report replaces any
earlier truth of its season; ``reported_at`` is when it was first imported
(importing the same report again keeps it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from agrimatch.agronomy import CROPS
from agrimatch.registry import Field, Season, SeasonTruth, record_season_truth
from forecasting.imports._csv import CellReader, Column, RawTable, check_columns
from forecasting.imports._report import BadRow, ImportReport, by_line

KIND = "harvests"
HARVEST_COLUMNS = (
    Column("farm", True, "the id of a farm in the registry", "coop-7"),
    Column("field", True, "the id of a field of that farm", "north"),
    Column("season", True, "the season's harvest year", "2024"),
    Column("harvest_start", True, "the first day of the harvest", "2024-05-20"),
    Column("harvest_end", True, "the last day of the harvest", "2024-06-05"),
    Column("yield_t_ha", False, "the yield in tonnes per hectare", "18.4"),
    Column("quantity_t", False, "the quantity harvested in tonnes", "46"),
    Column("harvest_peak", False, "the day most was harvested", "2024-05-28"),
    Column("reported_by", True, "who reported the harvest (an agronomist's name)", "Li Wei"),
)
ONE_OF = (("yield_t_ha", "quantity_t"),)
YIELD_BOUND_TIMES_POTENTIAL = 3.0
MAX_SEASON_DAYS = 730  # planting to the end of harvest; orchards' bud break to picking is < 1 year
_AGREE_SHARE = 0.01  # yield × area and quantity given both: rounding, not a contradiction
_REPORTER_LENGTH = 200  # the registry column's length


@dataclass(frozen=True, slots=True)
class HarvestRow:
    """A harvest row that reads well on its own; one of yield and quantity may be None."""

    line: int
    farm: str
    field: str
    season: int
    harvest_start: date
    harvest_peak: date
    harvest_end: date
    yield_t_ha: float | None
    quantity_t: float | None
    reported_by: str


def parse_harvest_rows(table: RawTable) -> tuple[list[HarvestRow], list[BadRow]]:
    """Read every row on its own and check seasons are not repeated; pure."""
    rows: list[HarvestRow] = []
    bad: list[BadRow] = []
    first_line: dict[tuple[str, str, int], int] = {}
    for raw in table.rows:
        if raw.problem:
            bad.append(BadRow(raw.line, None, raw.problem))
            continue
        cells = CellReader(raw, HARVEST_COLUMNS)
        farm = cells.identifier("farm")
        field = cells.identifier("field")
        season = cells.whole_number("season", low=1900)
        start = cells.day("harvest_start")
        end = cells.day("harvest_end")
        peak = cells.day("harvest_peak", required=False)
        yield_t_ha = cells.number("yield_t_ha", required=False, low=0.0)
        quantity_t = cells.number("quantity_t", required=False, low=0.0)
        reported_by = cells.required("reported_by")
        if not cells.text("yield_t_ha") and not cells.text("quantity_t"):
            cells.fail("yield_t_ha", "and quantity_t are both empty: give one of them")
        if reported_by is not None and len(reported_by) > _REPORTER_LENGTH:
            cells.fail("reported_by", f"is longer than {_REPORTER_LENGTH} characters: shorten it")
        if start is not None and end is not None:
            if end < start:
                cells.fail(
                    "harvest_end",
                    f"{end} is before harvest_start {start}: swap them, or check the years",
                )
            elif peak is None:
                peak = start + timedelta(days=(end - start).days // 2)
            elif not start <= peak <= end:
                cells.fail(
                    "harvest_peak",
                    f"{peak} is outside the harvest {start}..{end}: give a day within it, "
                    "or leave it empty for the midpoint",
                )
        if farm is not None and field is not None and season is not None:
            key = (farm, field, season)
            if key in first_line:
                cells.fail(
                    None,
                    f"repeats line {first_line[key]}'s farm/field/season {farm}/{field}/{season}: "
                    "one report a field-season",
                )
            else:
                first_line[key] = raw.line
        bad.extend(cells.problems)
        if (
            cells.problems
            or farm is None
            or field is None
            or season is None
            or start is None
            or peak is None
            or end is None
            or reported_by is None
        ):
            continue
        rows.append(
            HarvestRow(
                raw.line, farm, field, season, start, peak, end, yield_t_ha, quantity_t, reported_by
            )
        )
    return rows, bad


def import_harvests(
    session: Session,
    table: RawTable,
    *,
    dry_run: bool = False,
    reported_at: datetime | None = None,
) -> ImportReport:
    """Check every row of ``table`` and, when all are good and not ``dry_run``, record each
    season's truth with who reported it (see the module docstring).

    ``reported_at`` (default: now) is stamped on reports not recorded before.
    All or nothing: with any bad row nothing is written. Writes in ``session``
    and flushes; the caller commits. Raises
    :class:`~forecasting.imports.ImportFormatError` when a required column is missing.
    """
    ignored = check_columns(table, KIND, HARVEST_COLUMNS, one_of=ONE_OF)
    rows, bad = parse_harvest_rows(table)
    seasons = _seasons(session, rows)
    truths: list[tuple[HarvestRow, SeasonTruth]] = []
    for row in rows:
        season = seasons.get((row.farm, row.field, row.season))
        if season is None:
            bad.append(_missing_season(session, row))
            continue
        problems = _check_against_season(row, season)
        if problems:
            bad.extend(problems)
            continue
        truths.append((row, _truth(row, season.area_ha)))
    if bad:
        return ImportReport(KIND, len(table.rows), by_line(bad), {}, dry_run, ignored)
    if not dry_run:
        for row, truth in truths:
            record_season_truth(
                session,
                row.farm,
                row.field,
                row.season,
                truth,
                reported_by=row.reported_by,
                reported_at=reported_at,
            )
    counts = {"seasons (harvest recorded)": len(truths)}
    return ImportReport(KIND, len(table.rows), (), counts, dry_run, ignored)


def _seasons(session: Session, rows: Sequence[HarvestRow]) -> dict[tuple[str, str, int], Season]:
    keys = [(row.farm, row.field, row.season) for row in rows]
    found: dict[tuple[str, str, int], Season] = {}
    # Chunks: SQLite allows a few thousand bound parameters per statement.
    for start in range(0, len(keys), 300):
        chunk = keys[start : start + 300]
        for season in session.scalars(
            select(Season).where(tuple_(Season.farm_id, Season.field_id, Season.year).in_(chunk))
        ):
            found[(season.farm_id, season.field_id, season.year)] = season
    return found


def _missing_season(session: Session, row: HarvestRow) -> BadRow:
    field = session.scalar(
        select(Field).where(Field.farm_id == row.farm, Field.field_id == row.field)
    )
    if field is None:
        reason = (
            f"no field {row.field} on farm {row.farm} in the registry: import fields first "
            "(agrimatch import fields), or fix the ids"
        )
        return BadRow(row.line, "field", reason)
    reason = (
        f"field {row.field} of farm {row.farm} has no season {row.season} in the registry: "
        "import the season's planting first (agrimatch import fields), or fix the year "
        "(a season is named by its harvest year)"
    )
    return BadRow(row.line, "season", reason)


def _check_against_season(row: HarvestRow, season: Season) -> list[BadRow]:
    """Harvest after planting and within two years; a yield the crop can bear; yield and
    quantity agreeing when both are given."""
    bad = []
    if row.harvest_start <= season.planted_on:
        bad.append(
            BadRow(
                row.line,
                "harvest_start",
                f"{row.harvest_start} is not after the season's planting on {season.planted_on}: "
                f"check the year (season {row.season} is harvested in {row.season})",
            )
        )
    elif (row.harvest_end - season.planted_on).days > MAX_SEASON_DAYS:
        bad.append(
            BadRow(
                row.line,
                "harvest_end",
                f"{row.harvest_end} is {(row.harvest_end - season.planted_on).days} days after "
                f"the planting on {season.planted_on}, over {MAX_SEASON_DAYS}: check the year",
            )
        )
    crop = CROPS[season.crop]
    bound_t_ha = YIELD_BOUND_TIMES_POTENTIAL * crop.potential_yield_t_ha
    yield_t_ha = row.yield_t_ha
    if yield_t_ha is None and row.quantity_t is not None:
        yield_t_ha = row.quantity_t / season.area_ha
    elif yield_t_ha is not None and row.quantity_t is not None:
        expected_t = yield_t_ha * season.area_ha
        if abs(row.quantity_t - expected_t) > _AGREE_SHARE * max(expected_t, row.quantity_t):
            bad.append(
                BadRow(
                    row.line,
                    "quantity_t",
                    f"{row.quantity_t:g} t disagrees with yield_t_ha {yield_t_ha:g} on the "
                    f"season's {season.area_ha:g} ha ({expected_t:.4g} t): give one of them, "
                    "or make them agree",
                )
            )
    if yield_t_ha is not None and yield_t_ha > bound_t_ha:
        given = "yield_t_ha" if row.yield_t_ha is not None else "quantity_t"
        how = (
            f"{yield_t_ha:g} t/ha"
            if row.yield_t_ha is not None
            else f"{row.quantity_t:g} t on {season.area_ha:g} ha is {yield_t_ha:.4g} t/ha, which"
        )
        bad.append(
            BadRow(
                row.line,
                given,
                f"{how} is above {bound_t_ha:g} t/ha, {YIELD_BOUND_TIMES_POTENTIAL:g} times "
                f"{season.crop}'s potential yield ({crop.potential_yield_t_ha:g} t/ha): check "
                "the unit (tonnes, per hectare; not kg, not per mu)",
            )
        )
    return bad


def _truth(row: HarvestRow, area_ha: float) -> SeasonTruth:
    if row.yield_t_ha is not None:
        yield_t_ha = row.yield_t_ha
        quantity_t = row.quantity_t if row.quantity_t is not None else yield_t_ha * area_ha
    else:
        assert row.quantity_t is not None  # parse_harvest_rows requires one of them
        quantity_t = row.quantity_t
        yield_t_ha = quantity_t / area_ha
    return SeasonTruth(
        yield_t_ha=yield_t_ha,
        quantity_t=quantity_t,
        harvest_start=row.harvest_start,
        harvest_peak=row.harvest_peak,
        harvest_end=row.harvest_end,
    )
