"""``agrimatch forecast run | show | what-if``: parse, call the forecast service, print."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from agrimatch.cli.common import (
    console,
    err_console,
    fail,
    parse_day,
    settings_or_exit,
    setup_logging,
    stage_spinner,
)

T = TypeVar("T")

forecast_app = typer.Typer(
    help="Yield, harvest, demand and balance forecasts, and what to do about them.",
    no_args_is_help=True,
)

AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Forecast as of this date (YYYY-MM-DD; default today)"),
]
Limit = Annotated[int, typer.Option(min=1, help="Rows per table")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v")]


@forecast_app.command("run")
def forecast_run(as_of: AsOf = None, limit: Limit = 20, verbose: Verbose = False) -> None:
    """Run the chain once and save it: forecasts, supply vs demand, campaign and planting
    recommendations (then printed as `forecast show` prints them)."""
    from agrimatch.cli.forecast_views import print_results, wide
    from agrimatch.cli.wiring import open_forecast_service
    from forecasting.errors import ChainError

    setup_logging(verbose)
    day = parse_day(as_of)
    service = open_forecast_service(settings_or_exit())
    try:
        service.check_forecast(day)  # seconds, before any telemetry is read
        with stage_spinner() as report:
            run = service.run_forecast(day, report)
        results = service.results(day) if run.ok else None
    except ChainError as exc:
        raise fail(f"cannot forecast: {exc}", 1) from None
    finally:
        service.store.close()
    if results is None:
        raise fail(f"forecast failed: {run.run.error}", 1)
    print_results(results, wide(console), limit)


@forecast_app.command("show")
def forecast_show(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The run of this date (YYYY-MM-DD; default: the newest)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Everything, as JSON")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="One table (--table) as CSV")] = False,
    table: Annotated[
        str, typer.Option(help="With --csv: campaigns, planting, balance, fields, supply, demand")
    ] = "campaigns",
    limit: Limit = 20,
) -> None:
    """Print the latest stored forecast run: campaigns by date with platform, window, volume
    and reason; planting per farm with the reason; supply vs demand per week; field forecasts."""
    from agrimatch.cli.forecast_views import (
        CSV_TABLES,
        print_results,
        results_csv,
        results_json,
        wide,
    )
    from agrimatch.cli.wiring import open_forecast_service

    if as_json and as_csv:
        raise fail("--json and --csv: choose one")
    if table not in CSV_TABLES:
        raise fail(f"--table must be one of {', '.join(CSV_TABLES)}, not {table!r}")
    day = parse_day(as_of) if as_of is not None else None
    service = open_forecast_service(settings_or_exit())
    try:
        results = service.results(day)
    finally:
        service.store.close()
    if results is None:
        where = f"as of {day}" if day else "yet"
        raise fail(f"no forecast stored {where}: run `agrimatch forecast run --as-of DATE`", 1)
    if as_json:
        typer.echo(results_json(results))
    elif as_csv:
        typer.echo(results_csv(results, table), nl=False)
    else:
        print_results(results, wide(console), limit)


@forecast_app.command("what-if")
def forecast_what_if(
    as_of: AsOf = None,
    area: Annotated[
        list[str] | None,
        typer.Option("--area", help="CROP=FACTOR: scale that crop's area (repeat for more)"),
    ] = None,
    shift: Annotated[
        list[str] | None,
        typer.Option("--shift", help="CROP=DAYS: plant that crop later (or earlier if < 0)"),
    ] = None,
    weather: Annotated[
        str | None,
        typer.Option(help="Weather of the season so far: drought, heat_wave, wet_spell, frost"),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Balance and recommendations for a changed plan or weather, next to today's; not saved."""
    from agrimatch.cli.forecast_views import print_what_if, wide
    from agrimatch.cli.wiring import open_forecast_service
    from forecasting.errors import ChainError, InvalidRequest
    from forecasting.whatif import PlanChange

    setup_logging(verbose)
    day = parse_day(as_of)
    try:
        change = PlanChange(
            area_scale_by_crop=parse_pairs(area or [], float, "--area"),
            planting_shift_days_by_crop=parse_pairs(shift or [], int, "--shift"),
            weather=weather,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    service = open_forecast_service(settings_or_exit())
    try:
        service.check_plan_change(day, change)  # a typo fails here, before any model runs
        with stage_spinner() as report:
            result = service.what_if(day, change, report)
    except InvalidRequest as exc:
        raise fail(str(exc)) from None
    except ChainError as exc:
        raise fail(f"cannot forecast: {exc}", 1) from None
    finally:
        service.store.close()
    err_console.print("")
    print_what_if(result, day, wide(console))


def parse_pairs(values: list[str], kind: Callable[[str], T], what: str) -> dict[str, T]:
    """``["garlic=0.8", ...]`` -> ``{"garlic": 0.8}``; a clear error for anything else."""
    pairs: dict[str, T] = {}
    for value in values:
        crop, sep, number = value.partition("=")
        try:
            if not sep or not crop.strip():
                raise ValueError
            pairs[crop.strip()] = kind(number)
        except ValueError:
            raise ValueError(f"{what} takes CROP=NUMBER, not {value!r}") from None
    return pairs
