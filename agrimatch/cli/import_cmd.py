"""``agrimatch import farms|fields|harvests|demand FILE.csv [--dry-run]``: a cooperative's own
data in.

Entry points only: read the file, call :mod:`forecasting.imports`, print.
Exit codes: 0 written (or a dry run found every row good); 1 bad rows,
nothing written (or the store or registry failed while writing); 2 a usage
error (the file is missing or not UTF-8 CSV, a required column is missing,
the settings are invalid).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agrimatch.cli.common import fail, settings_or_exit
from agrimatch.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from forecasting.imports import ImportReport, RawTable

import_app = typer.Typer(
    help=(
        "Bring your own data: farms, fields (with their seasons), harvests and platform demand "
        "from CSV. Every row is checked first; with any bad row nothing is written."
    ),
    no_args_is_help=True,
)

CsvFile = Annotated[
    Path,
    typer.Argument(
        help="The CSV file: UTF-8, comma-separated, the column names on the first line",
        metavar="FILE.csv",
        show_default=False,
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check every row; write nothing")]


@import_app.command("farms")
def import_farms_command(file: CsvFile, dry_run: DryRun = False) -> None:
    """Farms and their regions: farm, region, lat, lon [, region_name, elevation_m].

    A new region is created from its first farm's row, which must then give
    elevation_m; regions already in the registry are left as they are.
    """
    from forecasting.imports import import_farms

    table = _read_or_exit(file)
    _run_in_registry(lambda session: import_farms(session, table, dry_run=dry_run))


@import_app.command("fields")
def import_fields_command(file: CsvFile, dry_run: DryRun = False) -> None:
    """Fields and their seasons, one row per field-season (import farms first).

    Columns: farm, field, crop, area_ha, planted_on, soil, lat, lon [, season].
    A season is named by its harvest year: garlic sown 2023-10-05 is season 2024.
    """
    from forecasting.imports import import_fields

    table = _read_or_exit(file)
    _run_in_registry(lambda session: import_fields(session, table, dry_run=dry_run))


@import_app.command("harvests")
def import_harvests_command(file: CsvFile, dry_run: DryRun = False) -> None:
    """Harvest reports, the truth of field-seasons (import fields first).

    Columns: farm, field, season, harvest_start, harvest_end, yield_t_ha or
    quantity_t, reported_by [, harvest_peak].
    """
    from forecasting.imports import import_harvests

    table = _read_or_exit(file)
    _run_in_registry(lambda session: import_harvests(session, table, dry_run=dry_run))


@import_app.command("demand")
def import_demand_command(file: CsvFile, dry_run: DryRun = False) -> None:
    """Platform sales history, daily or weekly (import farms first, for the regions).

    Columns: platform, crop, region, day or week (its Monday), quantity_kg,
    orders, price_cny_per_kg [, campaign, platform_name]. Days go to the
    telemetry store, a week spread evenly over its seven days; new platforms
    and the campaigns found go to the registry.
    """
    from agrimatch.cli.wiring import open_configured_store
    from forecasting.imports import import_demand

    table = _read_or_exit(file)
    settings = settings_or_exit()
    store = open_configured_store(settings)
    try:
        _run_in_registry(
            lambda session: import_demand(session, store, table, dry_run=dry_run), settings
        )
    finally:
        store.close()


def _run_in_registry(
    run: Callable[[Session], ImportReport], settings: Settings | None = None
) -> NoReturn:
    """Run an import in one registry transaction, print its report, exit 0 or 1."""
    from agrimatch.cli.wiring import open_registry
    from agrimatch.registry import RegistryError
    from agrimatch.store import StoreError, StoreUnavailable
    from forecasting.imports import ImportFormatError

    settings = settings or settings_or_exit()
    sessions = open_registry(settings)
    try:
        with sessions.begin() as session:
            report = run(session)
    except ImportFormatError as exc:
        raise fail(escape(str(exc))) from None
    except (StoreError, StoreUnavailable, RegistryError) as exc:
        raise fail(escape(str(exc)), code=1) from None
    _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _read_or_exit(file: Path) -> RawTable:
    from forecasting.imports import ImportFormatError, read_csv

    try:
        return read_csv(file)
    except ImportFormatError as exc:
        raise fail(escape(str(exc))) from None


def _print_report(report: ImportReport) -> None:
    console = Console()  # made now, so it takes the terminal's (or $COLUMNS') current width
    if report.ignored_columns:
        console.print(
            f"[yellow]ignored columns[/] {escape(', '.join(report.ignored_columns))}: "
            f"not {report.kind} columns (a typo of one?)",
            highlight=False,
        )
    if not report.ok:
        table = Table(title=f"bad {report.kind} rows")
        table.add_column("line", justify="right")
        table.add_column("column")
        table.add_column("reason", overflow="fold")
        for bad in report.bad_rows:
            table.add_row(str(bad.line), bad.column or "(row)", escape(bad.reason))
        console.print(table)
        console.print(f"[red]{escape(report.summary())}[/]", highlight=False)
        return
    table = Table(title=f"{report.kind}: {'would write' if report.dry_run else 'written'}")
    table.add_column("what")
    table.add_column("rows", justify="right")
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    for note in report.notes:
        console.print(escape(note), highlight=False)
    console.print(escape(report.summary()), highlight=False)
