"""``agrimatch backtest``: a scenario's simulated history in a work directory, then the backtest.

The backtest never touches the configured store and registry: the scenario
is backfilled into an embedded store and a SQLite registry of its own work
directory (``telemetry.sqlite3``, ``registry.sqlite3``, the names ``agrimatch
sim backfill`` uses with ``AGRIMATCH_DATA_DIR``), kept between runs and
reused while it holds the truth of every season asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from threadpoolctl import threadpool_limits

from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.registry.models import Season
from agrimatch.scenario import Scenario
from agrimatch.store.embedded import EmbeddedStore
from firmware_sim.backfill import BackfillOptions, StoreSink, backfill, season_years
from forecasting.backtest import BacktestOptions, BacktestReport, run_backtest
from forecasting.chain_data import load_chain_data
from forecasting.plots import plot_supply_demand

STORE_FILE = "telemetry.sqlite3"
REGISTRY_FILE = "registry.sqlite3"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class BacktestRun:
    report: BacktestReport
    backfilled: bool
    png: Path | None
    json_path: Path


def run_backtest_command(
    scenario: Scenario,
    work_dir: Path,
    backfill_options: BackfillOptions,
    options: BacktestOptions,
    progress: Progress,
) -> BacktestRun:
    """Backfill ``scenario`` into ``work_dir`` unless it is there, then backtest it."""
    work_dir.mkdir(parents=True, exist_ok=True)
    years = season_years(scenario, backfill_options.seasons)
    if not _complete(work_dir, scenario, years):
        for name in (STORE_FILE, REGISTRY_FILE):  # ours, and incomplete: start over
            for stale in work_dir.glob(f"{name}*"):
                stale.unlink()
    store = EmbeddedStore(work_dir / STORE_FILE)
    engine = make_engine(f"sqlite:///{work_dir / REGISTRY_FILE}")
    try:
        migrate(engine)
        sessions = session_factory(engine)
        backfilled = not _has_truth(sessions, scenario, years)
        if backfilled:
            backfill(scenario, store, sessions, StoreSink(store), backfill_options, progress)
        with sessions() as session:
            data = load_chain_data(
                store, session, date(years[0] - 2, 1, 1), date(years[-1] + 1, 1, 1)
            )
    finally:
        store.close()
        engine.dispose()
    # One OpenMP thread: the boosted trees' threads spin-wait, and next to any other busy
    # process on a small machine that made fits several times slower, not faster.
    with threadpool_limits(limits=1, user_api="openmp"):
        report = run_backtest(data, options)
    png = _plot(report, work_dir / f"{scenario.name}-backtest.png", scenario.name)
    json_path = work_dir / f"{scenario.name}-backtest.json"
    json_path.write_text(json.dumps(report_json(report), indent=2, default=str) + "\n")
    return BacktestRun(report, backfilled, png, json_path)


def _complete(work_dir: Path, scenario: Scenario, years: list[int]) -> bool:
    if not (work_dir / REGISTRY_FILE).is_file():
        return False
    engine = make_engine(f"sqlite:///{work_dir / REGISTRY_FILE}")
    try:
        migrate(engine)
        return _has_truth(session_factory(engine), scenario, years)
    finally:
        engine.dispose()


def _has_truth(sessions: sessionmaker[Session], scenario: Scenario, years: list[int]) -> bool:
    """Every field of the scenario has its truth recorded for every year asked for."""
    fields = sum(len(farm.fields) for farm in scenario.all_farms())
    with sessions() as session:
        query = (
            select(Season.year, func.count())
            .where(Season.yield_t_ha.is_not(None))
            .group_by(Season.year)
        )
        counts = {int(year): int(n) for year, n in session.execute(query)}
    return all(counts.get(year, 0) >= fields for year in years)


def _plot(report: BacktestReport, path: Path, name: str) -> Path | None:
    chain = report.last_chain
    if chain is None or chain.balance.empty:
        return None
    actual = report.actual_weekly
    supply = demand = None
    if actual is not None and not actual.empty:
        # Only the forecast's weeks: the truth of other years would squeeze the picture.
        weeks = chain.balance["week"]
        actual = actual[(actual["week"] >= min(weeks)) & (actual["week"] <= max(weeks))]
        supply = actual.rename(columns={"supply_kg": "kg"})[["crop", "region", "week", "kg"]]
        demand = actual.rename(columns={"demand_kg": "kg"})[["crop", "region", "week", "kg"]]
        supply, demand = supply.dropna(), demand.dropna()
    title = f"{name}: forecast as of the planning date vs the simulated season"
    return plot_supply_demand(
        chain.balance,
        chain.campaigns,
        path,
        title=title,
        actual_supply=supply,
        actual_demand=demand,
    )


def report_json(report: BacktestReport) -> dict[str, Any]:
    """The report's numbers as JSON-able data (what docs/benchmarks.md quotes)."""
    return {
        "evaluation_years": report.evaluation_years,
        "yield_by_lead": report.yield_by_lead.to_dict(orient="records"),
        "yield_by_crop": report.yield_by_crop.to_dict(orient="records"),
        "demand": report.demand_scores,
        # Ours beside seasonal naive and the statsforecast peers, on the same weeks.
        "demand_forecasters": report.demand_by_forecaster.to_dict(orient="records"),
        "campaigns": report.campaign_scores,
        "replays": [
            {
                "year": r.year,
                "crop": r.crop,
                "region": r.region,
                "as_of": r.as_of,
                "harvest_peak": r.harvest_peak,
                "campaigns": [
                    {"platform": c.platform, "start": c.start, "end": c.end} for c in r.campaigns
                ],
                "surplus_kg": r.outcome.surplus_kg,
                "cleared_recommended": r.outcome.recommended.surplus_cleared_share,
                "cleared_naive": r.outcome.naive.surplus_cleared_share,
                "cleared_ceiling": (
                    r.outcome.ceiling.surplus_cleared_share if r.outcome.ceiling else None
                ),
                "lost_kg_recommended": r.outcome.recommended.lost_kg,
                "lost_kg_naive": r.outcome.naive.lost_kg,
                "lost_kg_none": r.outcome.none.lost_kg,
            }
            for r in report.replays
        ],
        "targets": [
            {"name": t.name, "measured": t.measured, "target": t.target, "met": t.met}
            for t in report.targets()
        ],
    }


def print_report(report: BacktestReport, console: Console) -> None:
    """The backtest's tables: yield by lead, demand, campaign replays, targets."""
    years = ", ".join(str(y) for y in report.evaluation_years)
    table = Table(title=f"yield, rolling origin (held-out seasons {years})")
    for column in ("lead d", "fields", "P50 WAPE", "reg. mean", "last seas.",
                   "vs reg.", "pinball", "P10-P90"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in report.yield_by_lead.itertuples(index=False):
        table.add_row(
            str(row.lead_days),
            f"{row.fields:,}",
            f"{row.wape_p50:.1%}",
            f"{row.wape_regional_mean:.1%}",
            f"{row.wape_last_season:.1%}",
            f"{row.better_than_regional_mean:+.0%}",
            f"{row.pinball_mean:.3f}",
            f"{row.coverage_p10_p90:.0%}",
        )
    console.print(table)
    crops = Table(title="yield by crop")
    for column in ("crop", "lead d", "fields", "P50 WAPE", "reg. mean", "P10-P90"):
        crops.add_column(column, justify="right")
    for row in report.yield_by_crop.itertuples(index=False):
        crops.add_row(
            str(row.crop),
            str(row.lead_days),
            f"{row.fields:,}",
            f"{row.wape_p50:.1%}",
            f"{row.wape_regional_mean:.1%}",
            f"{row.coverage_p10_p90:.0%}",
        )
    console.print(crops)
    demand = report.demand_scores
    console.print(
        f"demand: {demand['origins']:.0f} origins, {demand['weeks']:,.0f} series-weeks; "
        f"P50 WAPE {demand['wape_p50']:.1%} vs seasonal naive "
        f"{demand['wape_seasonal_naive']:.1%} ({demand['better_than_seasonal_naive']:+.0%}), "
        f"P10-P90 coverage {demand['coverage_p10_p90']:.0%}"
    )
    if not report.demand_by_forecaster.empty:
        print_demand_forecasters(report.demand_by_forecaster, console)
    replays = Table(title="campaigns replayed in the simulated market")
    replay_columns = ("year", "crop · region", "planned", "peak", "n", "first start",
                      "surplus t", "cleared rec/naive/ceiling",
                      "lost t rec/naive/none")  # fmt: skip
    for column in replay_columns:
        replays.add_column(column, justify="right")
    for r in report.replays:
        o = r.outcome
        shares = (o.recommended, o.naive, o.ceiling or o.none)
        cleared = (
            "/".join(f"{x.surplus_cleared_share:.0%}" for x in shares) if o.surplus_kg else "-"
        )
        lost = "/".join(f"{x.lost_kg / 1000:,.0f}" for x in (o.recommended, o.naive, o.none))
        replays.add_row(
            str(r.year),
            f"{r.crop} · {r.region}",
            f"{r.as_of:%m-%d}",
            f"{r.harvest_peak:%m-%d}",
            str(len(r.campaigns)),
            f"{r.first_campaign_start:%m-%d}" if r.first_campaign_start else "-",
            f"{o.surplus_kg / 1000:,.0f}",
            cleared,
            lost,
        )
    console.print(replays)
    targets = Table(title="targets")
    for column in ("target", "measured", "wanted", "met"):
        targets.add_column(column)
    for t in report.targets():
        measured = f"{t.measured:,.0f} kg" if "kg" in t.name else f"{t.measured:.1%}"
        targets.add_row(t.name, measured, t.target, "yes" if t.met else "[red]no[/]")
    console.print(targets)


def print_demand_forecasters(scores: pd.DataFrame, console: Console) -> None:
    """Ours beside seasonal naive and the statistical peers: WAPE, coverage, time."""
    table = Table(title="demand vs statistical peers (same series, origins and weeks)")
    for column in ("forecaster", "P50 WAPE", "P10-P90", "seconds", "ours better by"):
        table.add_column(column, justify="right")
    for row in scores.itertuples(index=False):
        coverage = "-" if pd.isna(row.coverage_p10_p90) else f"{row.coverage_p10_p90:.0%}"
        better = "" if row.forecaster == "model" else f"{row.model_better:+.0%}"
        table.add_row(
            "ours" if row.forecaster == "model" else str(row.forecaster),
            f"{row.wape_p50:.1%}",
            coverage,
            f"{row.seconds:.1f}",
            better,
        )
    console.print(table)
