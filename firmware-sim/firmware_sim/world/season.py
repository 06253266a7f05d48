"""One field through one season: weather, soil, crop and the ground truth of its harvest.

:func:`simulate_field_season` ties the world together for a field of a
scenario's farm: the farm's weather (:mod:`.weather`, shared by its fields),
the crop's phenology and canopy (:mod:`.crop`), the soil's water balance and
temperature (:mod:`.soil`), and the yield the season allows. It returns a
:class:`SeasonTruth`: daily arrays (what the sensors and a camera would see)
and the truth (yield, harvest dates, quantity). The truth is for training and
evaluating the forecaster; devices never publish it.

A season ``year`` spans the *crop year*: from the planting date (bud break
for orchards) to the day before the next one, so consecutive seasons tile the
calendar and a device's environment on any day comes from exactly one of
them. Crops sown before winter (garlic) are sown in the autumn of ``year -
1`` and harvested in ``year``. The water balance starts 60 days before
planting, so the soil at planting carries the weather before it.

Everything is a pure function of its arguments and seeded by ``(seed, farm,
field, year)`` through stable hashes: the same call gives the same season in
any process, in any order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from agrimatch.agronomy import CROPS, SOILS, CropSpec
from agrimatch.agronomy.cultivars import gdd_to_maturity
from agrimatch.agronomy.seasons import planting_date
from agrimatch.scenario import Anomaly, Farm, FieldPlan, Region, Scenario
from firmware_sim.world import soil as soil_model
from firmware_sim.world._climate import Climate, climate_at
from firmware_sim.world._seeding import stream
from firmware_sim.world.crop_season import simulate_season_on
from firmware_sim.world.weather import anomalies_for, anomaly_strength, farm_weather

SPINUP_DAYS = 60
FARM_YIELD_SD = 0.12  # farm-to-farm spread of management (log scale)
SEASON_YIELD_SD = 0.07  # what else varies season to season on a field (pests, lodging...)
MAX_HARVEST_DELAY_DAYS = 3

Array = NDArray[np.float64]
_SOIL_FIELDS = tuple(f.name for f in dataclasses.fields(soil_model.SoilWater))


@dataclass(frozen=True, slots=True)
class FarmSite:
    """Where a farm is and what weather hits it (its region's anomalies)."""

    farm: str
    region: str
    lat: float
    lon: float
    elevation_m: float = 100.0
    anomalies: tuple[Anomaly, ...] = ()
    weather_file: str | None = None  # the region's observed daily weather (absolute path)

    @property
    def climate(self) -> Climate:
        return climate_at(self.lat, self.lon, self.elevation_m, self.weather_file)


@dataclass(frozen=True, slots=True)
class FieldSetup:
    """What a field grows, on what soil, planted (or in bud) on which month-day."""

    field: str
    crop: str
    planting: str  # "MM-DD"
    soil: str = "loam"
    area_ha: float = 1.0


@dataclass(frozen=True, slots=True)
class SeasonDaily:
    """A crop year, day by day (index 0 = planting or bud break)."""

    first_ordinal: int  # date.toordinal() of index 0
    dates: NDArray[np.datetime64]
    tmin_c: Array
    tmax_c: Array
    tmean_c: Array
    rain_mm: Array
    irrigation_mm: Array
    radiation_mj_m2: Array
    dew_point_c: Array
    et0_mm: Array
    etc_mm: Array
    eta_mm: Array
    transpiration_mm: Array
    transpiration_potential_mm: Array
    soil_moisture_10cm_pct: Array
    soil_moisture_30cm_pct: Array
    soil_temp_c: Array
    gdd: Array
    stage: NDArray[np.int8]  # -1 off season, 0-3 FAO-56 stages, 4 mature
    kc: Array
    canopy_cover: Array
    biomass_t_ha: Array
    ndvi: Array
    ks: Array
    in_field: NDArray[np.bool_]
    water: soil_model.SoilWater  # the full water balance, for hourly soil moisture

    def __len__(self) -> int:
        return len(self.dates)


@dataclass(frozen=True, slots=True)
class SeasonTruth:
    """A field's season: what happened (``daily``) and what it yielded (the truth)."""

    farm: str
    field: str
    region: str
    crop: str
    soil: str
    year: int
    area_ha: float
    planted_on: date
    maturity: date
    matured: bool  # False: ended by a killing frost or the crop year's end
    harvest_start: date
    harvest_peak: date
    harvest_end: date
    potential_yield_t_ha: float
    yield_t_ha: float
    quantity_t: float
    water_stress: float  # 1 - Ta/Tp over planting-to-maturity
    heat_stress: float  # share of yield lost to heat
    frost_stress: float  # share of yield lost to frost
    heat_degree_days: float
    frost_degree_days: float
    farm_factor: float  # the farm's management, as a yield multiplier
    season_factor: float  # the rest of the season's luck
    daily: SeasonDaily = dataclasses.field(repr=False, compare=False)

    def record(self) -> dict[str, object]:
        """The truth without the daily arrays: one row of a training or evaluation table."""
        row = {name: getattr(self, name) for name in _RECORD_FIELDS}
        row["rain_mm"] = float(self.daily.rain_mm[self.daily.in_field].sum())
        row["irrigation_mm"] = float(self.daily.irrigation_mm.sum())
        return row


_RECORD_FIELDS = (
    "farm",
    "field",
    "region",
    "crop",
    "soil",
    "year",
    "area_ha",
    "planted_on",
    "maturity",
    "matured",
    "harvest_start",
    "harvest_peak",
    "harvest_end",
    "potential_yield_t_ha",
    "yield_t_ha",
    "quantity_t",
    "water_stress",
    "heat_stress",
    "frost_stress",
    "heat_degree_days",
    "frost_degree_days",
    "farm_factor",
    "season_factor",
)


SUPPLEMENTAL_TRIGGER_SPREAD = 0.2  # share of p a farm's diligence (1 sd) moves its trigger


def irrigation_for(climate: Climate, crop: CropSpec, diligence: float) -> soil_model.Irrigation:
    """How the region's farmers water: an oasis fully, the North China Plain and Mengzi's
    ponds as far as their water and labour go, the rainfed hills not at all.

    Farmers schedule on the crop's own allowable depletion, FAO-56 Table 22's p
    (the catalog's ``depletion_fraction``: garlic 0.30, potato 0.35, tomato 0.40,
    maize 0.55, pear and jujube 0.50) — the depletion past which the crop model's
    stomata start to close and its canopy soon stops expanding — not on one share
    for every crop: a vegetable grower waters long before a maize grower would.
    The oasis waters a little before p, generously and often. A supplemental
    farm waters at ``p x (1 - 0.2 diligence)`` (``diligence`` about -1.5..1.5),
    at most every ``10 - 3 diligence`` days: an average farmer at p every ten
    days at most, a diligent one before p and more often, a careless one up to
    30 % past p and a fortnight apart, whose crop is stressed somewhat between
    waterings; smaller waterings than the oasis', rationed in a drought
    (``water_supply``).
    """
    p = crop.depletion_fraction
    if climate.irrigation == "full":
        return soil_model.Irrigation(trigger=0.9 * p, refill=1.0, max_mm=100.0, min_interval_days=7)
    if climate.irrigation == "supplemental":
        trigger = p * (1.0 - SUPPLEMENTAL_TRIGGER_SPREAD * diligence)
        interval = max(5, round(10.0 - 3.0 * diligence))
        return soil_model.Irrigation(
            trigger=trigger, refill=0.8, max_mm=60.0, min_interval_days=interval
        )
    return soil_model.NO_IRRIGATION


@dataclass(frozen=True, slots=True)
class _Luck:
    farm_factor: float
    diligence: float
    season_factor: float
    harvest_delay_days: int


def _luck(seed: int, farm: str, field_id: str, year: int) -> _Luck:
    farm_rng = stream(seed, "farm-practice", farm)
    farm_z, diligence = farm_rng.standard_normal(2)
    season_rng = stream(seed, "field-season", farm, field_id, year)
    season_z = season_rng.standard_normal()
    delay = int(season_rng.integers(0, MAX_HARVEST_DELAY_DAYS + 1))
    # Lognormal multipliers with mean 1.
    return _Luck(
        farm_factor=math.exp(FARM_YIELD_SD * farm_z - FARM_YIELD_SD**2 / 2),
        diligence=float(np.clip(diligence, -1.5, 1.5)),
        season_factor=math.exp(SEASON_YIELD_SD * season_z - SEASON_YIELD_SD**2 / 2),
        harvest_delay_days=delay,
    )


@lru_cache(maxsize=512)
def simulate_season(site: FarmSite, setup: FieldSetup, year: int, seed: int) -> SeasonTruth:
    """Simulate one field's crop year (memoised: devices ask for the same seasons again)."""
    crop = CROPS[setup.crop]
    soil = SOILS[setup.soil]
    climate = site.climate
    planted = planting_date(crop, setup.planting, year)
    next_planting = planting_date(crop, setup.planting, year + 1)
    start = planted - timedelta(days=SPINUP_DAYS)
    weather = farm_weather(seed, site.farm, climate, start, next_planting, site.anomalies)
    luck = _luck(seed, site.farm, setup.field, year)

    # A real weather file carries its station's reference ET0 (Penman-Monteith, as AquaCrop's
    # files do): that beats Hargreaves from temperatures alone.
    et0 = weather.reference_et0_mm
    if et0 is None:
        et0 = climate.et0_calibration * soil_model.et0_hargreaves_mm(
            weather.tmin_c, weather.tmax_c, weather.extraterrestrial_mj_m2
        )
    drought = anomaly_strength(weather.first_ordinal, len(weather), site.anomalies, "drought")
    grown_season = simulate_season_on(
        weather,
        crop,
        soil,
        SPINUP_DAYS,
        gdd_to_maturity=gdd_to_maturity(crop, site.region),
        et0_mm=et0,
        irrigation=irrigation_for(climate, crop, luck.diligence),
        water_supply=np.exp(-0.4 * drought),  # canals and wells are rationed in a drought
        harvest_delay_days=luck.harvest_delay_days,
    )
    phen, water, grown = grown_season.phenology, grown_season.water, grown_season.growth
    factors = grown_season.factors
    soil_temp = soil_model.soil_temperature_c(weather.tmean_c, grown.cover)

    keep = slice(SPINUP_DAYS, None)
    daily = SeasonDaily(
        first_ordinal=planted.toordinal(),
        dates=weather.dates[keep],
        tmin_c=weather.tmin_c[keep],
        tmax_c=weather.tmax_c[keep],
        tmean_c=weather.tmean_c[keep],
        rain_mm=weather.rain_mm[keep],
        irrigation_mm=water.irrigation_mm[keep],
        radiation_mj_m2=weather.radiation_mj_m2[keep],
        dew_point_c=weather.dew_point_c[keep],
        et0_mm=et0[keep],
        etc_mm=water.etc_mm[keep],
        eta_mm=water.eta_mm[keep],
        transpiration_mm=water.transpiration_mm[keep],
        transpiration_potential_mm=water.transpiration_potential_mm[keep],
        soil_moisture_10cm_pct=water.moisture_10cm_pct[keep],
        soil_moisture_30cm_pct=water.moisture_30cm_pct[keep],
        soil_temp_c=soil_temp[keep],
        gdd=phen.gdd[keep],
        stage=phen.stage[keep],
        kc=phen.kc[keep],
        canopy_cover=grown.cover[keep],
        biomass_t_ha=grown.biomass_t_ha[keep],
        ndvi=grown.ndvi[keep],
        ks=water.ks[keep],
        in_field=phen.in_field[keep],
        water=soil_model.SoilWater(**{name: getattr(water, name)[keep] for name in _SOIL_FIELDS}),
    )
    # The crop model gives the biophysical yield; farm practice attains a share of it.
    attained = grown_season.yield_t_ha * crop.attainable_share
    yield_t_ha = attained * luck.farm_factor * luck.season_factor

    def day(index: int) -> date:
        return start + timedelta(days=index)

    return SeasonTruth(
        farm=site.farm,
        field=setup.field,
        region=site.region,
        crop=crop.name,
        soil=soil.name,
        year=year,
        area_ha=setup.area_ha,
        planted_on=planted,
        maturity=day(phen.maturity_index),
        matured=phen.matured,
        harvest_start=day(phen.harvest_start_index),
        harvest_peak=day(phen.harvest_peak_index),
        harvest_end=day(phen.harvest_end_index),
        potential_yield_t_ha=crop.potential_yield_t_ha,
        yield_t_ha=yield_t_ha,
        quantity_t=yield_t_ha * setup.area_ha,
        water_stress=1.0 - factors.transpiration_ratio,
        heat_stress=1.0 - factors.heat,
        frost_stress=1.0 - factors.frost,
        heat_degree_days=factors.heat_degree_days,
        frost_degree_days=factors.frost_degree_days,
        farm_factor=luck.farm_factor,
        season_factor=luck.season_factor,
        daily=daily,
    )


def farm_site(farm: Farm, region: Region, anomalies: Iterable[Anomaly] = ()) -> FarmSite:
    """A scenario farm as a :class:`FarmSite`, with the anomalies of its region."""
    return FarmSite(
        farm=farm.id,
        region=farm.region,
        lat=farm.lat,
        lon=farm.lon,
        elevation_m=region.elevation_m,
        anomalies=anomalies_for(farm.region, anomalies),
        weather_file=region.weather_file,
    )


def field_setup(plan: FieldPlan) -> FieldSetup:
    """A scenario field plan as a :class:`FieldSetup`."""
    return FieldSetup(
        field=plan.id, crop=plan.crop, planting=plan.planting, soil=plan.soil, area_ha=plan.area_ha
    )


def simulate_field_season(
    farm: Farm,
    field_plan: FieldPlan,
    region: Region,
    year: int,
    seed: int,
    anomalies: Iterable[Anomaly] = (),
) -> SeasonTruth:
    """Simulate ``field_plan`` of ``farm`` for season ``year``; anomalies of other regions
    are ignored. Deterministic for ``(seed, farm, field, year)``."""
    return simulate_season(farm_site(farm, region, anomalies), field_setup(field_plan), year, seed)


def scenario_seasons(scenario: Scenario) -> Iterator[SeasonTruth]:
    """Every field-season of a scenario, farm by farm (so a farm's weather is reused)."""
    regions = {r.id: r for r in scenario.regions}
    years = range(scenario.first_season, scenario.first_season + scenario.seasons)
    for farm in scenario.all_farms():
        site = farm_site(farm, regions[farm.region], scenario.anomalies)
        for year in years:
            for plan in farm.fields:
                yield simulate_season(site, field_setup(plan), year, scenario.seed)
