"""Next season's planting plan on the shipped scenarios, with and without what makes it
one a farmer would accept (issue 12 §4): switching costs, orchards' costs of change, rent
on idle land and prices anchored on what the platforms observed.

Each scenario is backfilled at ``--scale`` of its farms (platform demand scaled alike)
for ``--seasons`` seasons into a temporary embedded store and SQLite registry; the chain
runs as of ``--lead-days`` before the last season's median harvest peak of the
scenario's main crop (as tests/test_shipped_scenarios.py does). The same forecasts and
market then go through the planting LP twice:

* ``bare``: no switching cost, no rent on idle land, orchards as annual crops, and the
  price curve anchored as before (the platforms' forecast year of demand at the observed
  price, or today's production for a crop they do not sell);
* ``now``: the defaults (forecasting.planting, forecasting.economics).

Prints, per scenario and crop, the area now, under each plan, the change in percent,
the model's price of today's plan under each anchoring and the observed price; then
idle hectares and one-off costs. Run: ``.venv/bin/python bench/planting_plans.py``.

``--rotation-days N`` also asks the default scenario's plan N days before and after
its maize harvest ends (median field): next season's plan should cover the whole
rotation, and barely move, whatever the date.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from agrimatch.agronomy import CROPS
from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.scenario import load_scenario
from agrimatch.store.embedded import EmbeddedStore
from firmware_sim.backfill import BackfillOptions, StoreSink, backfill
from forecasting.chain import forecast_as_of, train_yield_model
from forecasting.chain_data import load_chain_data
from forecasting.economics import (
    DEFAULT_PRICE_ELASTICITY,
    PRICE_TAKER_ELASTICITY,
    _annual_demand_t,
    crop_economics,
    current_plan,
)
from forecasting.planting import (
    CropEconomics,
    PlantingConstraints,
    PlantingPlan,
    linear_price_curve,
    recommend_planting,
)
from forecasting.recommend import DEFAULT_PLANTING_RISK

SCENARIOS = {  # scenario -> its main crop
    "default": "garlic",
    "garlic-glut": "garlic",
    "snow-lotus-surge": "snow_lotus_fruit",
    "korla-pear": "fragrant_pear",
    "yellow-river-jujube": "jujube",
}


def _bare_economics(
    economics: list[CropEconomics], forecasts: pd.DataFrame, demand: pd.DataFrame
) -> list[CropEconomics]:
    """The economics as they were before issue 12 §4: no orchard costs, and the curve
    through (the platforms' forecast year, the price) or (today's production, the price)."""
    annual = _annual_demand_t(demand)
    production = (
        forecasts.assign(t=forecasts["area_ha"] * forecasts["yield_t_ha_p50"])
        .groupby(["crop", "region"])["t"]
        .sum()
    )
    bare = []
    for e in economics:
        pair = (e.crop, e.region)
        price = e.observed_price_cny_per_kg or CROPS[e.crop].reference_price_cny_per_kg
        sold = pair in annual
        slope = DEFAULT_PRICE_ELASTICITY if sold else PRICE_TAKER_ELASTICITY
        reference = annual[pair] if sold else float(production.loc[pair])
        bare.append(
            dataclasses.replace(
                e,
                price_curve=linear_price_curve(reference, price, slope),
                perennial=False,
                establishment_cost_cny_per_ha=0.0,
                removal_cost_cny_per_ha=0.0,
                years_to_bearing=0,
            )
        )
    return bare


def _pct(area: float, current: float) -> float:
    return 100.0 * (float(area) - current) / current if current else float("nan")


def _run(name: str, crop: str, scale: float, seasons: int, lead_days: int, root: Path) -> None:
    started = time.perf_counter()
    store = EmbeddedStore(root / "telemetry.sqlite3")
    engine = make_engine(f"sqlite:///{root / 'registry.sqlite3'}")
    migrate(engine)
    sessions = session_factory(engine)
    scenario = load_scenario(name).scaled(scale)
    options = BackfillOptions(seasons=seasons, interval_s=6 * 3600, realism=False)
    backfill(scenario, store, sessions, StoreSink(store), options)
    year = scenario.first_season + seasons - 1
    with sessions() as session:
        data = load_chain_data(store, session, date(year - 4, 1, 1), date(year + 1, 1, 1))
    fields = data.seasons[(data.seasons["year"] == year) & (data.seasons["crop"] == crop)]
    peaks = sorted(fields["harvest_peak"])
    as_of = peaks[len(peaks) // 2] - timedelta(days=lead_days)
    with threadpool_limits(1):
        result = forecast_as_of(data, as_of, train_yield_model(data, as_of))
    market = result.market
    now_econ = crop_economics(result.forecasts, market.demand, market.observed_weekly, market.crops)
    current = current_plan(result.forecasts)
    plans: dict[str, PlantingPlan] = {
        "bare": recommend_planting(
            current,
            _bare_economics(now_econ, result.forecasts, market.demand),
            PlantingConstraints(switching_cost_share=0.0, land_rent_cny_per_ha=0.0),
            DEFAULT_PLANTING_RISK,
        ),
        "now": recommend_planting(current, now_econ, PlantingConstraints(), DEFAULT_PLANTING_RISK),
    }
    print(
        f"\n## {name} (scale {scale}, {seasons} seasons, as of {as_of}; "
        f"{time.perf_counter() - started:.0f} s)"
    )
    bare, now = (plans[k].regions.set_index(["region", "crop"]) for k in ("bare", "now"))
    print(
        f"{'region/crop':32} {'now ha':>8} {'bare ha':>8} {'bare %':>7} {'plan ha':>8} "
        f"{'plan %':>7} {'bare P':>7} {'model P':>7} {'obs P':>6}"
    )
    for (region, crop_name), row in now.iterrows():
        b = bare.loc[(region, crop_name)]
        cur = float(row["current_ha"])
        obs = row["observed_price_cny_per_kg"]
        print(
            f"{region + '/' + crop_name:32} {cur:8.1f} {b['recommended_ha']:8.1f} "
            f"{_pct(b['recommended_ha'], cur):+7.1f} {row['recommended_ha']:8.1f} "
            f"{_pct(row['recommended_ha'], cur):+7.1f} "
            f"{b['expected_price_cny_per_kg_before']:7.2f} "
            f"{row['expected_price_cny_per_kg_before']:7.2f} "
            f"{'—' if pd.isna(obs) else f'{obs:.2f}':>6}"
        )
    for key, plan in plans.items():
        s = plan.summary
        moved = float((plan.farms["change_ha"].abs()).sum()) / 2.0
        print(
            f"{key:5} idle {s.get('idle_ha_before', 0.0):.1f} -> {s.get('idle_ha_after', 0.0):.1f}"
            f" ha of {float(current['area_ha'].sum()):.1f}; hectares moved {moved:.1f}; "
            f"margin {s['expected_margin_cny_before']:,.0f} -> "
            f"{s['expected_margin_cny_after']:,.0f} CNY; one-off costs "
            f"{s.get('switching_cost_cny', 0.0) + s.get('establishment_cost_cny', 0.0):,.0f}"
            f" + removal {s.get('removal_cost_cny', 0.0):,.0f} CNY"
        )
    store.close()
    engine.dispose()


def _rotation(scale: float, seasons: int, days: int, root: Path) -> None:
    """The default scenario's plan asked ``days`` before and after the maize harvest ends
    (median field) in its last season: the crops it covers and its areas."""
    store = EmbeddedStore(root / "telemetry.sqlite3")
    engine = make_engine(f"sqlite:///{root / 'registry.sqlite3'}")
    migrate(engine)
    sessions = session_factory(engine)
    scenario = load_scenario("default").scaled(scale)
    options = BackfillOptions(seasons=seasons, interval_s=6 * 3600, realism=False)
    backfill(scenario, store, sessions, StoreSink(store), options)
    year = scenario.first_season + seasons - 1
    with sessions() as session:
        data = load_chain_data(store, session, date(year - 4, 1, 1), date(year + 2, 1, 1))
    maize = data.seasons[(data.seasons["year"] == year) & (data.seasons["crop"] == "maize")]
    ends = sorted(maize["harvest_end"])
    end = ends[len(ends) // 2]
    print(f"\n## default: the plan asked {days} days before and after the maize harvest ({end})")
    for as_of in (end - timedelta(days=days), end + timedelta(days=days)):
        with threadpool_limits(1):
            result = forecast_as_of(data, as_of, train_yield_model(data, as_of))
        if result.planting is None:
            print(f"{as_of}: no plan ({result.planting_error})")
            continue
        regions = result.planting.regions
        cells = [
            f"{r.crop} {r.current_ha:.1f} -> {r.recommended_ha:.1f} ha "
            f"({100 * r.change_ha / r.current_ha:+.1f} %)"
            for r in regions.itertuples()
        ]
        print(f"{as_of}: " + "; ".join(cells))
    store.close()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--seasons", type=int, default=3)
    parser.add_argument("--lead-days", type=int, default=60)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument(
        "--rotation-days",
        type=int,
        default=0,
        help="also ask the default scenario's plan this many days before and after its "
        "maize harvest",
    )
    args = parser.parse_args()
    if args.rotation_days:
        with tempfile.TemporaryDirectory() as tmp:
            _rotation(args.scale, args.seasons, args.rotation_days, Path(tmp))
        if not args.scenario:
            return
    for name in args.scenario or list(SCENARIOS):
        with tempfile.TemporaryDirectory() as tmp:
            _run(name, SCENARIOS[name], args.scale, args.seasons, args.lead_days, Path(tmp))


if __name__ == "__main__":
    main()
