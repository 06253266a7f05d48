"""Forecast + balance + recommend for 1,000 and 10,000 fields: fields/s and peak memory.

    .venv/bin/python bench/forecast_scale.py [--fields 1000 10000]

Fields are the garlic-glut scenario's farms repeated (new ids) until there
are enough; their daily telemetry frames come straight from the world model
(what a backfill would store, without the store), so the timing is the
forecaster's own: features as of a date, yield quantiles and drivers, harvest
windows, weekly supply, demand forecast, balance and campaign recommendations,
and the planting LP over the same farms: ``forecasting.chain.forecast_as_of``
on an in-memory ``ChainData``. The yield model is trained once on
two earlier seasons of the first 440 fields (timed separately). Peak memory
is the Python heap's (tracemalloc) over the timed part.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agrimatch.scenario import Farm, load_scenario
from firmware_sim.market import daily_demand
from firmware_sim.world.season import SeasonTruth, simulate_field_season
from forecasting.chain import TrainedYieldModel, forecast_as_of
from forecasting.chain_data import CAMPAIGN_COLUMNS, ChainData, PlatformInfo
from forecasting.features import FEATURE_COLUMNS, field_features
from forecasting.frames import DAILY_FIELD_COLUMNS, FIELD_SEASON_COLUMNS
from forecasting.yield_model import YieldQuantileModel

AS_OF = date(2024, 4, 15)


def daily_frame(truth: SeasonTruth, end: date) -> pd.DataFrame:
    d = truth.daily
    n = max(0, min((end - truth.planted_on).days, (truth.harvest_end - truth.planted_on).days + 1))
    return pd.DataFrame(
        {
            "farm": truth.farm,
            "field": truth.field,
            "day": [truth.planted_on + timedelta(days=k) for k in range(n)],
            "air_temp_min_c": d.tmin_c[:n],
            "air_temp_max_c": d.tmax_c[:n],
            "air_temp_mean_c": d.tmean_c[:n],
            "rain_mm": d.rain_mm[:n],
            "solar_rad_mj_m2": d.radiation_mj_m2[:n],
            "air_rh_mean_pct": 65.0,
            "soil_moisture_10cm_pct": d.soil_moisture_10cm_pct[:n],
            "soil_moisture_30cm_pct": d.soil_moisture_30cm_pct[:n],
            "soil_temp_mean_c": d.soil_temp_c[:n],
            "ndvi": np.nan,
        }
    ).loc[:, list(DAILY_FIELD_COLUMNS)]


def seasons_frame(truths: list[SeasonTruth]) -> pd.DataFrame:
    return pd.DataFrame(
        [{c: getattr(t, c) for c in FIELD_SEASON_COLUMNS} for t in truths],
        columns=list(FIELD_SEASON_COLUMNS),
    )


def farms_for(fields: int) -> list[Farm]:
    base = load_scenario("garlic-glut").all_farms()
    farms: list[Farm] = []
    copy = 0
    while sum(len(f.fields) for f in farms) < fields:
        for farm in base:
            farms.append(farm.model_copy(update={"id": f"{farm.id}-c{copy}"}))
            if sum(len(f.fields) for f in farms) >= fields:
                break
        copy += 1
    return farms


def simulate(farms: list[Farm], year: int) -> list[SeasonTruth]:
    scenario = load_scenario("garlic-glut")
    region = scenario.regions[0]
    return [
        simulate_field_season(farm, plan, region, year, scenario.seed, scenario.anomalies)
        for farm in farms
        for plan in farm.fields
    ]


def train(farms: list[Farm]) -> YieldQuantileModel:
    rows, targets = [], []
    for year in (2022, 2023):
        for truth in simulate(farms, year):
            snapshot = truth.harvest_peak - timedelta(days=45)
            daily = daily_frame(truth, snapshot)
            rows.append(field_features(daily, seasons_frame([truth]), snapshot))
            targets.append(truth.yield_t_ha)
    X = pd.concat(rows, ignore_index=True)
    return YieldQuantileModel(feature_columns=FEATURE_COLUMNS).fit(X, pd.Series(targets))


def run(fields: int, model: YieldQuantileModel, demand_daily: pd.DataFrame) -> None:
    farms = farms_for(fields)
    truths = simulate(farms, 2024)[:fields]
    daily = pd.concat([daily_frame(t, AS_OF) for t in truths], ignore_index=True)
    seasons = seasons_frame(truths).assign(
        yield_t_ha=np.nan, harvest_start=None, harvest_peak=None, harvest_end=None
    )
    platforms = (PlatformInfo("pdd", "Pinduoduo", 10), PlatformInfo("meituan", "Meituan", 14))
    campaigns = pd.DataFrame(columns=list(CAMPAIGN_COLUMNS))
    data = ChainData(seasons, daily, demand_daily, campaigns, platforms)
    trained = TrainedYieldModel(model, "bench", "", {})
    tracemalloc.start()
    started = time.perf_counter()
    # The chain itself: features, yield quantiles and drivers, harvest windows, supply,
    # demand forecast, balance, campaigns and the planting LP.
    result = forecast_as_of(data, AS_OF, trained)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    planted = "no plan" if result.planting is None else f"{len(result.planting.farms):,} farm-crops"
    print(
        f"{len(truths):>6,} fields: {elapsed:6.1f} s = {len(truths) / elapsed:8,.0f} fields/s, "
        f"peak heap {peak / 2**20:7,.0f} MiB; {len(result.forecasts):,} forecasts, "
        f"{len(result.supply):,} supply weeks, {len(result.campaigns)} campaigns, "
        f"planting {planted}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fields", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    with threadpool_limits(1):
        started = time.perf_counter()
        model = train(farms_for(440))
        print(f"yield model trained on 880 field-seasons in {time.perf_counter() - started:.1f} s")
        scenario = load_scenario("garlic-glut")
        history = []
        for profile in scenario.demand:
            series = daily_demand(profile, date(2021, 1, 1), AS_OF, seed=scenario.seed)
            history.append(
                pd.DataFrame(
                    {
                        "platform": profile.platform,
                        "crop": profile.crop,
                        "region": profile.region,
                        "day": [series.start + timedelta(days=k) for k in range(len(series))],
                        "quantity_kg": series.quantity_kg,
                        "orders": series.orders,
                        "price_cny_per_kg": series.price_cny_per_kg,
                    }
                )
            )
        demand_daily = pd.concat(history, ignore_index=True)
        for fields in args.fields:
            run(fields, model, demand_daily)


if __name__ == "__main__":
    main()
