"""The simulated physical world: weather, soil, crops and the truth of each harvest."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from agrimatch.agronomy import CROPS, SOILS
from agrimatch.agronomy.crops import REFERENCES
from agrimatch.scenario import Anomaly, Farm, FieldPlan, Region
from firmware_sim import DeviceSpec, plan_fleet, site_conditions
from firmware_sim.world import diurnal
from firmware_sim.world._climate import STATIONS
from firmware_sim.world.crop import daily_gdd
from firmware_sim.world.crop_season import simulate_season_on
from firmware_sim.world.season import (
    SPINUP_DAYS,
    FarmSite,
    FieldSetup,
    SeasonTruth,
    irrigation_for,
    simulate_field_season,
    simulate_season,
)
from firmware_sim.world.soil import NO_IRRIGATION, Irrigation
from firmware_sim.world.weather import farm_weather, weather_year

SEED = 21
STATION = {s.key: s for s in STATIONS}
SITES = {
    "zhongmou": FarmSite("zm-0001", "zhongmou", 34.72, 113.98, 90.0),
    "korla": FarmSite("kl-0001", "korla", 41.76, 86.15, 930.0),
    "yanchuan": FarmSite("yc-0001", "yanchuan", 36.88, 110.19, 800.0),
    "mengzi": FarmSite("mz-0001", "mengzi", 23.37, 103.38, 1300.0),
}
SEVEN_CROPS = {
    "garlic",
    "fragrant_pear",
    "jujube",
    "snow_lotus_fruit",
    "maize",
    "potato",
    "tomato",
}


def _season(
    region: str,
    crop: str,
    planting: str,
    *,
    year: int = 2022,
    soil: str = "loam",
    anomalies: tuple[Anomaly, ...] = (),
    seed: int = SEED,
    farm: str | None = None,
) -> SeasonTruth:
    site = dataclasses.replace(SITES[region], anomalies=anomalies)
    if farm is not None:
        site = dataclasses.replace(site, farm=farm)
    return simulate_season(site, FieldSetup("f01", crop, planting, soil, 2.5), year, seed)


# --- the catalogs -------------------------------------------------------------------------


def test_the_catalog_has_the_seven_crops_with_a_source_for_every_number():
    assert set(CROPS) >= SEVEN_CROPS
    numeric = [
        f.name
        for f in dataclasses.fields(CROPS["maize"])
        if f.type in ("float", "tuple[float, float, float, float]", "tuple[str, str]")
    ]
    assert len(numeric) >= 20
    annual_only = {"harvest_index", "dry_matter_fraction", "attainable_share"}  # orchards: none
    for crop in CROPS.values():
        expected = set(numeric) - annual_only if crop.perennial else set(numeric) | annual_only
        assert set(crop.sources) == expected, crop.name
        for name in expected:
            source = crop.sources[name]
            head = source.split(":")[0].split(",")[0].split(" ")[0]
            assert head in REFERENCES or head in ("estimate", "calibrated"), (crop.name, name)
        assert abs(sum(crop.stage_fractions) - 1.0) < 1e-9
        assert crop.base_temp_c < crop.upper_temp_c
        assert 0 < crop.kc_ini <= crop.kc_mid + 0.3


def test_the_catalog_knows_which_crops_are_orchards_and_which_are_sown_before_winter():
    assert {n for n, c in CROPS.items() if c.perennial} == {"fragrant_pear", "jujube"}
    assert {n for n, c in CROPS.items() if c.sown_before_winter} == {"garlic"}


def test_soils_keep_their_names_and_order_their_water_contents_with_sources():
    assert list(SOILS) == ["sand", "sandy_loam", "loam", "silt_loam", "clay_loam", "clay"]
    for soil in SOILS.values():
        assert 0 < soil.wilting_point_pct < soil.field_capacity_pct < soil.saturation_pct < 100
        assert 0 < soil.drainage_coefficient <= 1
        assert set(soil.sources) == {
            "saturation_pct",
            "field_capacity_pct",
            "wilting_point_pct",
            "ksat_mm_h",
            "readily_evaporable_mm",
        }
    # Sands drain in a day, clays hold their water.
    assert SOILS["sand"].drainage_coefficient > 3 * SOILS["clay"].drainage_coefficient


# --- determinism ----------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_world():
    first = _season("zhongmou", "garlic", "10-02", seed=5, farm="det-1")
    simulate_season.cache_clear()
    again = _season("zhongmou", "garlic", "10-02", seed=5, farm="det-1")
    assert first.record() == again.record()
    for name in ("rain_mm", "tmax_c", "soil_moisture_10cm_pct", "ndvi", "gdd", "eta_mm"):
        assert np.array_equal(getattr(first.daily, name), getattr(again.daily, name)), name


def test_the_same_seed_gives_the_same_world_in_another_process():
    here = _season("mengzi", "snow_lotus_fruit", "03-20", seed=9, farm="proc-1")
    code = (
        "import json, dataclasses; from firmware_sim.world.season import FarmSite, FieldSetup,"
        " simulate_season; "
        "site = FarmSite('proc-1', 'mengzi', 23.37, 103.38, 1300.0); "
        "s = simulate_season(site, FieldSetup('f01', 'snow_lotus_fruit', '03-20', 'loam', 2.5),"
        " 2022, 9); "
        "print(json.dumps([s.yield_t_ha, s.harvest_peak.isoformat(),"
        " float(s.daily.rain_mm.sum())]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == [
        here.yield_t_ha,
        here.harvest_peak.isoformat(),
        float(here.daily.rain_mm.sum()),
    ]


def test_a_different_seed_gives_a_different_world():
    a = _season("zhongmou", "maize", "06-10", seed=1)
    b = _season("zhongmou", "maize", "06-10", seed=2)
    assert not np.array_equal(a.daily.rain_mm, b.daily.rain_mm)
    assert a.yield_t_ha != b.yield_t_ha


def test_the_fields_of_a_farm_share_its_weather_and_neighbours_share_most_rain_days():
    site = SITES["zhongmou"]
    one = simulate_season(site, FieldSetup("f01", "maize", "06-10"), 2022, SEED)
    two = simulate_season(site, FieldSetup("f02", "maize", "06-10", "clay"), 2022, SEED)
    assert np.array_equal(one.daily.rain_mm, two.daily.rain_mm)
    neighbour = weather_year(SEED, "zm-0002", STATION["zhongmou"], 2022)
    ours = weather_year(SEED, "zm-0001", STATION["zhongmou"], 2022)
    same_wet = np.mean((neighbour.rain_mm > 0) == (ours.rain_mm > 0))
    assert 0.8 < same_wet < 1.0  # the same rain days, mostly


def test_weather_runs_on_across_new_year_whatever_span_is_asked_for():
    climate = STATION["yanchuan"]
    span = farm_weather(SEED, "yc-9", climate, date(2021, 12, 1), date(2022, 2, 1))
    january = farm_weather(SEED, "yc-9", climate, date(2022, 1, 1), date(2022, 1, 31))
    assert np.array_equal(span.tmax_c[31:61], january.tmax_c)
    # No jump at 1 January beyond ordinary day-to-day changes.
    steps = np.abs(np.diff(span.tmean_c))
    assert steps[30] < 4 * np.std(steps) + 1.0


# --- weather ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "low", "high"),
    [
        ("zhongmou", 13.5, 15.5),
        ("korla", 10.5, 12.5),
        ("yanchuan", 9.5, 11.5),
        ("mengzi", 18.0, 19.8),
    ],
)
def test_annual_mean_temperatures_are_plausible_for_the_four_regions(region, low, high):
    years = [weather_year(SEED, f"{region}-t", STATION[region], y) for y in range(2000, 2020)]
    mean = float(np.mean(np.concatenate([w.tmean_c for w in years])))
    assert low < mean < high


@pytest.mark.parametrize(
    ("region", "low", "high"),
    [("zhongmou", 450, 800), ("korla", 30, 110), ("yanchuan", 380, 650), ("mengzi", 650, 1000)],
)
def test_annual_rain_is_plausible_for_the_four_regions(region, low, high):
    totals = [
        weather_year(SEED, f"{region}-r", STATION[region], y).rain_mm.sum()
        for y in range(2000, 2020)
    ]
    assert low < np.mean(totals) < high
    assert np.std(totals) > 0.1 * np.mean(totals)  # years differ


@pytest.mark.parametrize("region", ["zhongmou", "yanchuan", "mengzi"])
def test_monsoon_rain_falls_mostly_in_summer(region):
    years = [weather_year(SEED, f"{region}-m", STATION[region], y) for y in range(1990, 2020)]
    months = np.concatenate([w.dates.astype("datetime64[M]").astype(int) % 12 + 1 for w in years])
    rain = np.concatenate([w.rain_mm for w in years])
    summer = rain[np.isin(months, [6, 7, 8])].sum()
    winter = rain[np.isin(months, [12, 1, 2])].sum()
    assert summer > 4 * winter


def test_wet_day_amounts_are_gamma_like():
    years = [weather_year(SEED, "zm-g", STATION["zhongmou"], y) for y in range(1980, 2020)]
    rain = np.concatenate([w.rain_mm for w in years])
    wet = rain[rain > 0]
    mean, sd = wet.mean(), wet.std()
    shape = (mean / sd) ** 2  # method of moments
    skew = np.mean(((wet - mean) / sd) ** 3)
    assert 0.4 < shape < 1.3  # WGEN-like: many small falls, few downpours
    assert skew > 1.5
    assert np.median(wet) < mean


def test_radiation_is_zero_at_night_and_the_hours_add_up_to_the_day():
    climate = STATION["korla"]
    weather = farm_weather(SEED, "kl-rad", climate, date(2022, 3, 1), date(2022, 3, 25))
    for index in (1, 10, 20):
        at = [diurnal.air_at(weather, index, m / 6, climate.lat).solar_w_m2 for m in range(144)]
        assert at[0] == 0.0 and at[-1] == 0.0  # midnight
        assert max(at) > 200.0
        assert sum(at) * 600 / 1e6 == pytest.approx(weather.radiation_mj_m2[index], rel=0.01)


def test_air_is_coolest_near_dawn_and_warmest_in_the_afternoon():
    climate = STATION["zhongmou"]
    weather = farm_weather(SEED, "zm-air", climate, date(2022, 5, 1), date(2022, 5, 12))
    hours = diurnal.hourly(weather, climate.lat, 1, 9)
    temp = hours["temp_c"].reshape(9, 24)
    assert np.all(np.argmax(temp, axis=1) >= 12) and np.all(np.argmax(temp, axis=1) <= 16)
    assert np.all(np.argmin(temp[:, :12], axis=1) <= 7)  # the morning's low is near dawn
    assert np.all(hours["rh_pct"] <= 100.0)


@pytest.mark.parametrize("interval_h", [0.5, 6.0, 30.0])
def test_the_extremes_of_an_interval_are_those_of_the_curve_sampled_densely(interval_h):
    climate = STATION["korla"]
    weather = farm_weather(SEED, "kl-ext", climate, date(2022, 4, 1), date(2022, 4, 12))

    def lookup(ordinal: int) -> tuple[object, int]:
        return weather, ordinal - weather.first_ordinal

    first_s = diurnal.day_start_s(weather.first_ordinal + 2, climate.lon)
    for start_h in np.arange(0.0, 48.0, 1.7):
        start_s = first_s + start_h * 3600.0
        end_s = start_s + interval_h * 3600.0
        low, high = diurnal.air_temp_extremes_c(lookup, climate.lon, start_s, end_s)
        dense = []
        for t_s in np.linspace(start_s, end_s, 2000):
            ordinal, hour = diurnal.local_day(climate.lon, float(t_s))
            dense.append(diurnal.air_temp_c(weather, ordinal - weather.first_ordinal, hour))
        assert low == pytest.approx(min(dense), abs=0.02)
        assert high == pytest.approx(max(dense), abs=0.02)
        assert low <= min(dense) + 1e-9 and high >= max(dense) - 1e-9


def test_an_interval_ending_before_it_starts_is_refused():
    climate = STATION["korla"]
    with pytest.raises(ValueError, match="before it starts"):
        diurnal.air_temp_extremes_c(lambda o: (None, 0), climate.lon, 10.0, 5.0)  # type: ignore[arg-type,return-value]


def test_anomalies_do_what_they_say():
    climate = STATION["zhongmou"]
    start, end = date(2022, 7, 1), date(2022, 8, 31)

    def weather(kind: str, intensity: float = 1.5) -> object:
        anomaly = Anomaly(kind=kind, region="zhongmou", start=start, end=end, intensity=intensity)
        return farm_weather(SEED, "zm-an", climate, start, end, (anomaly,))

    normal = farm_weather(SEED, "zm-an", climate, start, end)
    assert weather("drought").rain_mm.sum() < 0.3 * normal.rain_mm.sum()
    assert weather("wet_spell").rain_mm.sum() > 1.5 * normal.rain_mm.sum()
    assert weather("heat_wave").tmax_c.mean() > normal.tmax_c.mean() + 5.0
    assert weather("frost", 1.0).tmin_c.max() < -3.0  # well below zero, even in summer


# --- soil --------------------------------------------------------------------------------


@pytest.mark.parametrize("soil", list(SOILS))
def test_soil_moisture_stays_between_air_dry_and_saturation(soil):
    spec = SOILS[soil]
    wet = Anomaly(
        kind="wet_spell", region="korla", start=date(2022, 7, 1), end=date(2022, 7, 20), intensity=3
    )
    for region, crop, planting, anomalies in (
        ("korla", "maize", "04-25", (wet,)),  # irrigated, then drenched
        ("yanchuan", "potato", "04-20", ()),  # rainfed and dry
        ("mengzi", "snow_lotus_fruit", "03-20", ()),  # monsoon
    ):
        daily = _season(region, crop, planting, soil=soil, anomalies=anomalies).daily
        for series in (daily.soil_moisture_10cm_pct, daily.soil_moisture_30cm_pct):
            assert np.all(series >= 0.5 * spec.wilting_point_pct - 1e-9)
            assert np.all(series <= spec.saturation_pct + 1e-9)
            assert np.all((series >= 0) & (series <= 100))


def test_soil_temperature_lags_and_damps_the_air():
    daily = _season("yanchuan", "jujube", "04-20").daily
    assert np.std(np.diff(daily.soil_temp_c)) < np.std(np.diff(daily.tmean_c))
    lag = [np.corrcoef(daily.tmean_c[: -k or None], daily.soil_temp_c[k:])[0, 1] for k in range(6)]
    assert max(range(6), key=lambda k: lag[k]) >= 1


# --- crops and the truth ---------------------------------------------------------------------


def test_gdd_is_monotonic_and_maturity_is_where_it_reaches_the_target():
    for region, crop, planting in (
        ("zhongmou", "garlic", "10-02"),
        ("korla", "fragrant_pear", "03-28"),
        ("mengzi", "tomato", "03-01"),
    ):
        truth = _season(region, crop, planting)
        gdd = truth.daily.gdd
        assert np.all(np.diff(gdd) >= 0)
        assert truth.matured
        at = (truth.maturity - truth.planted_on).days
        target = CROPS[crop].gdd_to_maturity
        assert gdd[at] >= target and gdd[at - 1] < target


def test_degree_days_are_clamped_to_the_crops_base_and_upper_temperatures():
    maize = CROPS["maize"]
    gdd = daily_gdd(maize, np.array([5.0, 15.0, 25.0]), np.array([8.0, 25.0, 40.0]))
    assert list(gdd) == [0.0, 10.0, 17.5]


def test_seasons_land_on_the_regional_calendars():
    garlic = _season("zhongmou", "garlic", "10-02")
    assert garlic.planted_on == date(2021, 10, 2)  # sown the autumn before
    assert date(2022, 5, 5) <= garlic.maturity <= date(2022, 6, 5)
    pear = _season("korla", "fragrant_pear", "03-28")
    assert date(2022, 8, 25) <= pear.maturity <= date(2022, 9, 30)
    maize = _season("zhongmou", "maize", "06-10")
    assert date(2022, 9, 10) <= maize.maturity <= date(2022, 10, 20)


def test_a_later_planting_shifts_the_harvest_later():
    early = _season("zhongmou", "maize", "05-20")
    late = _season("zhongmou", "maize", "06-20")
    assert late.maturity > early.maturity
    assert late.harvest_peak > early.harvest_peak


def test_drought_lowers_yield():
    drought = Anomaly(
        kind="drought",
        region="yanchuan",
        start=date(2022, 5, 1),
        end=date(2022, 9, 1),
        intensity=1.5,
    )
    normal = _season("yanchuan", "jujube", "04-20")
    dry = _season("yanchuan", "jujube", "04-20", anomalies=(drought,))
    assert dry.water_stress > normal.water_stress
    assert dry.yield_t_ha < 0.85 * normal.yield_t_ha
    assert dry.daily.soil_moisture_30cm_pct.mean() < normal.daily.soil_moisture_30cm_pct.mean()


def test_drought_in_an_oasis_bites_through_rationed_irrigation():
    drought = Anomaly(
        kind="drought", region="korla", start=date(2022, 6, 1), end=date(2022, 8, 31), intensity=3
    )
    normal = _season("korla", "maize", "04-25")
    dry = _season("korla", "maize", "04-25", anomalies=(drought,))
    assert dry.yield_t_ha < normal.yield_t_ha


def test_a_heat_wave_at_flowering_lowers_yield():
    heat = Anomaly(
        kind="heat_wave",
        region="zhongmou",
        start=date(2022, 7, 25),
        end=date(2022, 8, 10),
        intensity=1.0,
    )
    normal = _season("zhongmou", "maize", "06-10")
    hot = _season("zhongmou", "maize", "06-10", anomalies=(heat,))
    assert hot.heat_stress > normal.heat_stress
    assert hot.yield_t_ha < 0.9 * normal.yield_t_ha


def test_a_frost_at_bloom_lowers_the_pear_crop():
    frost = Anomaly(
        kind="frost", region="korla", start=date(2022, 4, 5), end=date(2022, 4, 7), intensity=1.0
    )
    normal = _season("korla", "fragrant_pear", "03-28")
    frosted = _season("korla", "fragrant_pear", "03-28", anomalies=(frost,))
    assert frosted.frost_stress > 0.1
    assert frosted.yield_t_ha < normal.yield_t_ha


def test_the_truth_is_consistent():
    truth = _season("mengzi", "snow_lotus_fruit", "03-20")
    assert truth.quantity_t == pytest.approx(truth.yield_t_ha * truth.area_ha)
    assert truth.planted_on <= truth.maturity <= truth.harvest_start
    assert truth.harvest_start <= truth.harvest_peak <= truth.harvest_end
    spread = (truth.harvest_end - truth.harvest_start).days
    assert spread == round(CROPS["snow_lotus_fruit"].harvest_spread_days)
    row = truth.record()
    assert "daily" not in row and row["yield_t_ha"] == truth.yield_t_ha
    assert 0 < truth.yield_t_ha < 2 * truth.potential_yield_t_ha


def test_yields_vary_between_farms_around_the_potential():
    yields = [
        _season("korla", "fragrant_pear", "03-28", farm=f"kl-{k:04d}").yield_t_ha for k in range(30)
    ]
    potential = CROPS["fragrant_pear"].potential_yield_t_ha
    assert 0.7 * potential < np.mean(yields) < 1.2 * potential
    assert 0.05 < np.std(yields) / np.mean(yields) < 0.3


def test_ndvi_tracks_the_canopy_and_stays_in_range():
    daily = _season("zhongmou", "maize", "06-10").daily
    assert np.all((daily.ndvi >= 0.1) & (daily.ndvi <= 0.9))
    assert np.corrcoef(daily.ndvi, daily.canopy_cover)[0, 1] > 0.99
    peak = int(np.argmax(daily.ndvi))
    assert daily.ndvi[peak] > 0.8 and daily.ndvi[0] < 0.2
    assert daily.biomass_t_ha.max() > 10.0
    assert daily.stage[peak] in (1, 2, 3)


def test_simulate_field_season_takes_scenario_models_and_ignores_other_regions_anomalies():
    region = Region(id="zhongmou", name="Zhongmou", lat=34.72, lon=113.98, elevation_m=90)
    plan = FieldPlan(id="f01", crop="garlic", area_ha=2.0, planting="10-02", soil="silt_loam")
    farm = Farm(id="zm-0042", region="zhongmou", lat=34.7, lon=114.0, fields=(plan,))
    elsewhere = Anomaly(
        kind="drought", region="korla", start=date(2022, 1, 1), end=date(2022, 6, 1), intensity=3
    )
    plain = simulate_field_season(farm, plan, region, 2022, SEED)
    other = simulate_field_season(farm, plan, region, 2022, SEED, [elsewhere])
    assert plain.record() == other.record()
    assert plain.quantity_t == pytest.approx(2.0 * plain.yield_t_ha)


def test_one_field_season_takes_milliseconds():
    start = time.perf_counter()
    for k in range(100):
        _season("mengzi", "maize", "05-15", farm=f"perf-{k // 2}", year=2000 + k % 2)
    per_season_s = (time.perf_counter() - start) / 100
    assert per_season_s < 0.05  # ~3 ms on a laptop; generous for slow CI


# --- the device's view -----------------------------------------------------------------


def _device(**fields: object) -> DeviceSpec:
    spec = plan_fleet(1, SEED)[0]
    return dataclasses.replace(spec, region="yanchuan-shaanxi", lat=36.9, lon=110.2, **fields)


def test_a_devices_soil_readings_are_the_fields_season_truth():
    spec = _device(crop="jujube", soil="silt_loam", planting="04-20")
    truth = simulate_season(
        FarmSite(spec.address.farm, spec.region, 36.88, 110.19),
        FieldSetup(spec.address.field, "jujube", "04-20", "silt_loam"),
        2022,
        SEED,
    )
    for day in (10, 60, 120):
        ordinal = truth.daily.first_ordinal + day
        # Local solar midnight ending the day: the balance's end-of-day state.
        end_of_day = diurnal.day_start_s(ordinal + 1, 110.19) - 1.0
        site = site_conditions(spec, SEED, end_of_day)
        assert site.soil_moisture_10cm_pct == pytest.approx(
            truth.daily.soil_moisture_10cm_pct[day], abs=0.2
        )
        assert site.ndvi == pytest.approx(truth.daily.ndvi[day])


def test_anomalies_reach_the_devices():
    drought = Anomaly(
        kind="drought",
        region="yanchuan-shaanxi",
        start=date(2022, 5, 1),
        end=date(2022, 9, 1),
        intensity=2,
    )
    normal, dry = _device(), _device(anomalies=(drought,))
    start = datetime(2022, 6, 1, tzinfo=UTC).timestamp()
    times = [start + h * 6 * 3600.0 for h in range(4 * 60)]

    def mean(spec: DeviceSpec, name: str) -> float:
        return float(np.mean([getattr(site_conditions(spec, SEED, t), name) for t in times]))

    assert mean(dry, "soil_moisture_30cm_pct") < mean(normal, "soil_moisture_30cm_pct")
    assert mean(dry, "rain_mm") < mean(normal, "rain_mm")
    assert mean(dry, "air_rh_pct") < mean(normal, "air_rh_pct")


def test_every_region_gives_finite_conditions_all_year():
    start = datetime(2023, 12, 25, tzinfo=UTC).timestamp()
    for spec in plan_fleet(16, SEED):
        for k in range(0, 400, 7):
            site = site_conditions(spec, SEED, start + k * 86_400.0 + 3_333.0 * (k % 7))
            values = dataclasses.astuple(site)
            assert all(math.isfinite(v) for v in values), (spec.region, k)
            assert 0.0 <= site.soil_moisture_10cm_pct <= 100.0
            assert 0.1 <= site.ndvi <= 0.9


# --- how farmers water ----------------------------------------------------------------------


def _tomato_under(irrigation: Irrigation, year: int) -> tuple[float, float, float]:
    """A Zhongmou tomato (transplanted 15 April into a soil dried by spring) watered as
    given: (its canopy's peak over the unstressed canopy's, water stress, irrigation mm)."""
    site, tomato = SITES["zhongmou"], CROPS["tomato"]
    planted = date(year, 4, 15)
    start = planted - timedelta(days=SPINUP_DAYS)
    weather = farm_weather(SEED, site.farm, site.climate, start, date(year + 1, 4, 15))
    grown = simulate_season_on(weather, tomato, SOILS["loam"], SPINUP_DAYS, irrigation=irrigation)
    season = grown.phenology.in_field
    peak = grown.water.canopy_cover[season].max() / grown.phenology.cover[season].max()
    return peak, 1.0 - grown.factors.transpiration_ratio, float(grown.water.irrigation_mm.sum())


def test_farmers_water_each_crop_at_its_own_allowable_depletion():
    # FAO-56 Table 22's p per crop: a vegetable is watered long before maize would be.
    plain, oasis = SITES["zhongmou"].climate, SITES["korla"].climate
    for crop in CROPS.values():
        p = crop.depletion_fraction
        assert irrigation_for(plain, crop, 0.0).trigger == pytest.approx(p)
        assert (
            irrigation_for(plain, crop, 1.0).trigger < p < irrigation_for(plain, crop, -1.0).trigger
        )
        assert irrigation_for(oasis, crop, -1.5).trigger < p  # the oasis waters fully
    assert irrigation_for(SITES["yanchuan"].climate, CROPS["potato"], 1.5) == NO_IRRIGATION
    tomato, maize = (irrigation_for(plain, CROPS[c], 0.0).trigger for c in ("tomato", "maize"))
    assert tomato < maize


@pytest.mark.parametrize("year", [2024, 2026])
def test_a_supplemental_farmer_grows_a_full_tomato_canopy_a_careless_one_stresses_it(year):
    plain, tomato = SITES["zhongmou"].climate, CROPS["tomato"]
    average = _tomato_under(irrigation_for(plain, tomato, 0.0), year)
    diligent = _tomato_under(irrigation_for(plain, tomato, 1.0), year)
    careless = _tomato_under(irrigation_for(plain, tomato, -1.5), year)
    rainfed = _tomato_under(NO_IRRIGATION, year)
    # Watered at p, the canopy is not stunted (the crop model's expansion stops near p + 0.15).
    assert average[0] > 0.9 and diligent[0] > 0.9
    assert diligent[1] <= average[1] < careless[1] < rainfed[1]
    assert rainfed[2] == 0.0 < careless[2]
