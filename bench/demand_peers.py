"""Demand forecasts against the statistical peers, on the simulated markets alone (no backfill).

Two measurements, printed side by side per forecaster (P50 WAPE, P10-P90
coverage, seconds):

* ``--scenario NAME ...``: the demand part of ``agrimatch backtest`` (same
  origins, horizon and forecasters: :func:`forecasting.backtest.demand_backtest`)
  on the scenario's platform demand straight from the market simulator
  (``firmware_sim.market``, seasonal prices: the backfill's supply-driven
  price is left out, so figures differ slightly from the command's). Minutes
  instead of the command's backfill, yield and campaign replays.
* ``--held-out``: the held-out last year of the four case markets, as
  ``tests/test_demand_model.py`` scores it (history of four years, forecasts
  every fourth week of the last, 26 weeks ahead), for our trees alone, the
  shipped combination and MSTL.

    .venv/bin/python bench/demand_peers.py --scenario default:4 snow-lotus-surge jujube-scare
    .venv/bin/python bench/demand_peers.py --held-out
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from agrimatch.scenario import load_scenario
from firmware_sim.market import daily_demand
from forecasting.backtest import BacktestOptions, demand_backtest, demand_forecaster_scores
from forecasting.demand_combination import CombinedDemandForecaster
from forecasting.demand_data import weekly
from forecasting.demand_model import DemandForecaster
from forecasting.demand_peers import StatisticalPeer
from forecasting.metrics import wape

CASES = ("garlic-glut", "korla-pear", "yellow-river-jujube", "snow-lotus-surge")


@dataclass
class MarketData:
    """What :func:`demand_backtest` reads of a :class:`forecasting.chain_data.ChainData`."""

    demand_daily: pd.DataFrame
    campaigns: pd.DataFrame


def market(name: str, seasons: int | None, years_before: int = 1) -> tuple[MarketData, int]:
    """The scenario's simulated demand from ``years_before`` before its first season."""
    scenario = load_scenario(name)
    start = date(scenario.first_season - years_before, 1, 1)
    end = date(scenario.first_season + (seasons or scenario.seasons) - 1, 12, 31)
    parts = []
    for profile in scenario.demand:
        s = daily_demand(
            profile,
            start,
            end,
            seed=scenario.seed,
            campaigns=scenario.campaigns,
            trend_origin=start,
        )
        parts.append(
            pd.DataFrame(
                {
                    "platform": s.platform,
                    "crop": s.crop,
                    "region": s.region,
                    "day": s.days,
                    "quantity_kg": s.quantity_kg,
                    "orders": s.orders.astype(float),
                    "price_cny_per_kg": s.price_cny_per_kg,
                }
            )
        )
    campaigns = pd.DataFrame(
        [
            {
                "platform": c.platform,
                "crop": c.crop,
                "region": c.region,
                "start_on": c.start,
                "end_on": c.end,
                "uplift": c.uplift,
            }
            for c in scenario.campaigns
        ],
        columns=["platform", "crop", "region", "start_on", "end_on", "uplift"],
    )
    data = MarketData(pd.concat(parts, ignore_index=True), campaigns)
    return data, scenario.first_season + 2  # the backtest's first evaluation year


def scenario_backtest(spec: str) -> None:
    name, _, seasons = spec.partition(":")
    data, first_year = market(name, int(seasons) if seasons else None)
    started = time.perf_counter()
    predictions, seconds = demand_backtest(data, first_year, BacktestOptions())  # type: ignore[arg-type]
    scores = demand_forecaster_scores(predictions, seconds)
    print(f"\n{name}: {predictions['origin'].nunique()} origins, {len(predictions)} series-weeks, "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    print(scores.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    per_series = []
    for keys, group in predictions.groupby(["platform", "crop", "region"]):
        actual = group["actual_kg"].to_numpy()
        row: dict[str, object] = {"series": "/".join(map(str, keys))}
        columns = {"model": "demand_kg_p50", "gbm_alone": "gbm_alone_p50",
                   "seasonal_naive": "seasonal_naive", "mstl": "mstl_p50"}  # fmt: skip
        for label, column in columns.items():
            row[label] = wape(actual, group[column])
        per_series.append(row)
    print(pd.DataFrame(per_series).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def held_out() -> None:
    """The four case markets' last year, as tests/test_demand_model.py scores it."""
    histories, everything, campaigns, first_origins = [], [], [], {}
    for name in CASES:
        data, _ = market(name, 4, years_before=0)
        weeks = weekly(data.demand_daily)
        held_out_from = date(load_scenario(name).first_season + 3, 1, 7)
        held_out_from -= timedelta(days=held_out_from.weekday())
        histories.append(weeks[weeks["week"] < held_out_from])
        everything.append(weeks)
        campaigns.append(data.campaigns)
        first_origins[name] = (held_out_from - timedelta(weeks=1), weeks)
    history = pd.concat(histories, ignore_index=True)
    all_campaigns = pd.concat(campaigns, ignore_index=True)
    started = time.perf_counter()
    combined = CombinedDemandForecaster().fit(history, campaigns=all_campaigns)
    fitted = time.perf_counter() - started
    peer = StatisticalPeer("mstl").fit(history)
    forecasters: dict[str, DemandForecaster] = {
        "model": combined,
        "gbm_alone": combined.model_,
        "mstl": peer,
    }
    rows: dict[str, list[pd.DataFrame]] = {name: [] for name in forecasters}
    for first_origin, weeks in first_origins.values():
        last_week = max(weeks["week"])
        for k in range(0, 52, 4):
            origin = first_origin + timedelta(weeks=k)
            horizon = min(26, (last_week - origin).days // 7)
            truth = weeks[["platform", "crop", "region", "week", "quantity_kg"]]
            for name, forecaster in forecasters.items():
                forecast = forecaster.forecast(weeks, origin, horizon, campaigns=all_campaigns)
                joined = forecast.merge(truth, on=["platform", "crop", "region", "week"])
                rows[name].append(joined)
    print(f"\nheld-out year of {', '.join(CASES)} (combination fitted in {fitted:.0f} s)")
    for name, parts in rows.items():
        frame = pd.concat(parts, ignore_index=True)
        actual = frame["quantity_kg"].to_numpy()
        inside = (actual >= frame["demand_kg_p10"]) & (actual <= frame["demand_kg_p90"])
        by_crop = {
            crop: round(wape(g["quantity_kg"], g["demand_kg_p50"]), 3)
            for crop, g in frame.groupby("crop")
        }
        print(f"{name:>10}: P50 WAPE {wape(actual, frame['demand_kg_p50']):.3f}, "
              f"P10-P90 {float(np.mean(inside)):.2f}; {by_crop}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", nargs="*", default=[], help="NAME or NAME:SEASONS")
    parser.add_argument("--held-out", action="store_true")
    args = parser.parse_args()
    if not args.scenario and not args.held_out:
        parser.error("give --scenario NAME ... and/or --held-out")
    # One OpenMP thread, as agrimatch backtest: spinning threads on a shared machine.
    with threadpool_limits(limits=1, user_api="openmp"):
        for spec in args.scenario:
            scenario_backtest(spec)
        if args.held_out:
            held_out()


if __name__ == "__main__":
    main()
