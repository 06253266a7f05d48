"""A world of several regions in memory, for the distributed forecast's tests and bench.

Every shipped scenario has one region, and the distributed forecast
partitions by region, so this builds a world of four: the farms of the four
case scenarios (Zhongmou garlic, Korla pears, Mengzi snow lotus and
tomatoes, Yanchuan jujubes and potatoes), each in its own region with its own
climate, platforms and demand; ``copies`` repeats each region under a new id
(``korla-1``, ...) with new farm ids. Daily telemetry frames come straight
from the world model (what a backfill would store, without the store), past
seasons carry their truth, the current one does not, and fields still to be
sown on the date (Korla's pears bud after mid-April) are in it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from agrimatch.scenario import Farm, Region, load_scenario
from firmware_sim.market import daily_demand
from firmware_sim.world.season import SeasonTruth, simulate_field_season
from forecasting.chain_data import CAMPAIGN_COLUMNS, ChainData, PlatformInfo
from forecasting.frames import DAILY_FIELD_COLUMNS, FIELD_SEASON_COLUMNS

CASE_SCENARIOS = ("garlic-glut", "korla-pear", "snow-lotus-surge", "yellow-river-jujube")
AS_OF = date(2024, 4, 15)
YEARS = (2022, 2023, 2024)


@dataclass(frozen=True, slots=True)
class RegionalWorld:
    data: ChainData
    as_of: date
    regions: tuple[str, ...]
    fields: int  # field-seasons of the current year


def daily_frame(truth: SeasonTruth, end: date) -> pd.DataFrame:
    """The season's daily telemetry frame up to ``end`` (exclusive) or its harvest's end."""
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


def regional_world(
    farms_per_region: int = 6,
    copies: int = 1,
    as_of: date = AS_OF,
    demand_from: date = date(2021, 1, 1),
) -> RegionalWorld:
    """Four regions (× ``copies``) of ``farms_per_region`` farms each, seasons ``YEARS``,
    platform demand from ``demand_from`` (a shorter history fits the demand model faster)."""
    seasons: list[dict[str, object]] = []
    daily: list[pd.DataFrame] = []
    demand: list[pd.DataFrame] = []
    platforms: dict[str, PlatformInfo] = {}
    regions: list[str] = []
    for name in CASE_SCENARIOS:
        scenario = load_scenario(name)
        base_region = scenario.regions[0]
        base_farms = scenario.all_farms()[:farms_per_region]
        for platform in scenario.platforms:
            platforms.setdefault(
                platform.id,
                PlatformInfo(platform.id, platform.name, platform.campaign_lead_days),
            )
        for copy in range(copies):
            region_id = base_region.id if copy == 0 else f"{base_region.id}-{copy}"
            regions.append(region_id)
            region: Region = base_region.model_copy(update={"id": region_id})
            farms: list[Farm] = [
                f.model_copy(update={"id": f"{f.id}-c{copy}", "region": region_id})
                for f in base_farms
            ]
            for farm in farms:
                for plan in farm.fields:
                    for year in YEARS:
                        truth = simulate_field_season(
                            farm, plan, region, year, scenario.seed, scenario.anomalies
                        )
                        known = truth.harvest_end < as_of
                        row: dict[str, object] = {
                            c: getattr(truth, c) for c in FIELD_SEASON_COLUMNS
                        }
                        row.update(
                            yield_t_ha=truth.yield_t_ha if known else np.nan,
                            harvest_start=truth.harvest_start if known else None,
                            harvest_peak=truth.harvest_peak if known else None,
                            harvest_end=truth.harvest_end if known else None,
                        )
                        seasons.append(row)
                        daily.append(daily_frame(truth, as_of))
            for profile in scenario.demand:
                series = daily_demand(profile, demand_from, as_of, seed=scenario.seed)
                demand.append(
                    pd.DataFrame(
                        {
                            "platform": profile.platform,
                            "crop": profile.crop,
                            "region": region_id,
                            "day": [series.start + timedelta(days=k) for k in range(len(series))],
                            "quantity_kg": series.quantity_kg,
                            "orders": series.orders,
                            "price_cny_per_kg": series.price_cny_per_kg,
                        }
                    )
                )
    seasons_frame = pd.DataFrame(seasons)
    daily_all = pd.concat(daily, ignore_index=True)
    # One row per field and day, as the store's daily aggregate gives it.
    daily_all = daily_all.drop_duplicates(["farm", "field", "day"]).sort_values(
        ["farm", "field", "day"], kind="stable"
    )
    data = ChainData(
        seasons=seasons_frame,
        daily=daily_all.reset_index(drop=True),
        demand_daily=pd.concat(demand, ignore_index=True),
        campaigns=pd.DataFrame(columns=list(CAMPAIGN_COLUMNS)),
        platforms=tuple(platforms.values()),
    )
    current = int((seasons_frame["year"] == max(YEARS)).sum())
    return RegionalWorld(data, as_of, tuple(regions), current)
