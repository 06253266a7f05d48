"""Features as of a date, harvest windows and weekly supply, on simulated seasons.

The simulator's daily arrays stand in for the store's daily aggregates (a
DAILY_FIELD_COLUMNS frame built here); one test reads the same frame back
from a backfilled embedded store through ``daily_field_frame``.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from agrimatch.agronomy import CROPS, SOILS
from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.registry.repository import list_seasons
from agrimatch.scenario import Anomaly, Farm, FieldPlan, Region, parse_scenario
from firmware_sim.backfill import BackfillOptions, StoreSink, backfill
from firmware_sim.world.season import SeasonTruth, simulate_field_season
from forecasting.features import (
    CATEGORICAL_COLUMNS,
    FEATURE_COLUMNS,
    FEATURES_FRAME_COLUMNS,
    HISTORY_COLUMNS,
    field_features,
    recorded_history,
    stress_moisture_pct,
)
from forecasting.frames import DAILY_FIELD_COLUMNS, FIELD_SEASON_COLUMNS, SUPPLY_COLUMNS
from forecasting.harvest import (
    HARVEST_WINDOW_COLUMNS,
    gdd_climatology,
    harvest_window,
    harvest_windows,
    weekly_supply,
)
from forecasting.telemetry_frames import daily_field_frame, day_start_ms

SEED = 11
ZHONGMOU = Region(id="zhongmou", name="Zhongmou", lat=34.72, lon=113.98, elevation_m=90)
YANCHUAN = Region(id="yanchuan", name="Yanchuan", lat=36.88, lon=110.19, elevation_m=800)


def _farm(farm_id: str, region: Region, *plans: FieldPlan, shift: float = 0.0) -> Farm:
    return Farm(
        id=farm_id, region=region.id, lat=region.lat + shift, lon=region.lon - shift, fields=plans
    )


GARLIC = FieldPlan(id="f1", crop="garlic", area_ha=3.0, planting="10-01")
MAIZE = FieldPlan(id="f2", crop="maize", area_ha=5.0, planting="06-10", soil="silt_loam")
TOMATO = FieldPlan(id="f3", crop="tomato", area_ha=1.5, planting="04-15", camera=True)
FARM = _farm("farm-a", ZHONGMOU, GARLIC, MAIZE, TOMATO)


def _daily(truth: SeasonTruth, camera: bool = False) -> pd.DataFrame:
    """The season as the store would give it: planting to the end of harvest, daily."""
    d = truth.daily
    n = (truth.harvest_end - truth.planted_on).days + 1
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
            "ndvi": d.ndvi[:n] if camera else np.nan,
        }
    ).loc[:, list(DAILY_FIELD_COLUMNS)]


def _seasons(truths: list[SeasonTruth]) -> pd.DataFrame:
    return pd.DataFrame(
        [{c: getattr(t, c) for c in FIELD_SEASON_COLUMNS} for t in truths],
        columns=list(FIELD_SEASON_COLUMNS),
    )


def _simulate(farm: Farm, years: range, region: Region = ZHONGMOU, **kw) -> list[SeasonTruth]:
    return [
        simulate_field_season(farm, plan, region, year, SEED, **kw)
        for year in years
        for plan in farm.fields
    ]


@pytest.fixture(scope="module")
def world() -> tuple[list[SeasonTruth], pd.DataFrame, pd.DataFrame]:
    truths = _simulate(FARM, range(2022, 2025))
    daily = pd.concat([_daily(t, camera=t.field == TOMATO.id) for t in truths], ignore_index=True)
    return truths, daily, _seasons(truths)


# -- features ---------------------------------------------------------------------------


def test_features_frame_has_the_season_columns_as_of_and_every_feature(world):
    _, daily, seasons = world
    features = field_features(daily, seasons, date(2023, 7, 1))
    assert tuple(features.columns) == FEATURES_FRAME_COLUMNS
    assert len(features) == len(seasons)
    assert set(CATEGORICAL_COLUMNS) <= set(features.columns)
    assert (features["as_of"] == date(2023, 7, 1)).all()
    assert all(features[c].dtype == np.float64 for c in FEATURE_COLUMNS)


@pytest.mark.parametrize("as_of", [date(2023, 1, 20), date(2023, 6, 1), date(2023, 8, 15)])
def test_no_day_on_or_after_as_of_changes_any_feature(world, as_of):
    _, daily, seasons = world
    before = field_features(daily, seasons, as_of)

    future = pd.to_datetime(daily["day"]).dt.date >= as_of
    tampered = daily.copy()
    values = [c for c in DAILY_FIELD_COLUMNS if c not in ("farm", "field", "day")]
    tampered.loc[future, values] = tampered.loc[future, values] * 3.0 + 40.0
    tampered = tampered.drop(tampered.index[future][::3])  # and an outage in the future
    extra = daily.loc[future].head(50).copy()
    extra["day"] = [d + timedelta(days=400) for d in extra["day"]]  # rows beyond the season
    on_the_day = daily.loc[~future].tail(5).copy()
    on_the_day["day"] = as_of  # a row exactly on as_of
    on_the_day[values] = 99.0
    tampered = pd.concat([tampered, extra, on_the_day], ignore_index=True)

    after = field_features(tampered, seasons, as_of)
    pd.testing.assert_frame_equal(before, after)


def test_gdd_never_falls_as_as_of_moves_on(world):
    _, daily, seasons = world
    days = [date(2022, 9, 1) + timedelta(days=20 * k) for k in range(40)]
    gdd = np.array([field_features(daily, seasons, d)["gdd"].to_numpy() for d in days])
    assert np.all(np.diff(gdd, axis=0) >= 0.0)
    assert gdd[-1].min() > 0.0


def test_gdd_matches_the_crops_thermal_time(world):
    truths, daily, seasons = world
    as_of = date(2023, 9, 1)
    features = field_features(daily, seasons, as_of)
    for truth, gdd in zip(truths, features["gdd"], strict=True):
        k = (as_of - truth.planted_on).days
        if 0 < k <= (truth.harvest_end - truth.planted_on).days:
            assert gdd == pytest.approx(truth.daily.gdd[k - 1], rel=1e-9)


def test_garlic_features_run_across_the_winter_from_the_autumn_sowing(world):
    _, daily, seasons = world
    garlic = seasons[(seasons["crop"] == "garlic") & (seasons["year"] == 2023)]
    assert garlic["planted_on"].iloc[0] == date(2022, 10, 1)  # sown the autumn before

    def at(day: date) -> pd.Series:
        return field_features(daily, garlic, day).iloc[0]

    autumn, new_year, late_winter = (
        at(date(2022, 11, 15)),
        at(date(2023, 1, 2)),
        at(date(2023, 2, 20)),
    )
    assert new_year["days_since_planting"] == 93
    assert 0 < autumn["gdd"] < new_year["gdd"] < late_winter["gdd"]
    # Winter adds little thermal time: garlic is well short of maturity in February.
    assert late_winter["gdd_fraction"] < 0.6
    assert new_year["rain_mm"] > 0 and new_year["data_coverage"] == 1.0
    unplanted = at(date(2022, 9, 1))
    factors = ("stress_factor", "water_factor")
    ndvi = ("ndvi_max", "ndvi_recent", "ndvi_drop")
    not_counts = (*ndvi, "data_coverage", "past_yield_ratio", *factors)
    sums_and_counts = [c for c in FEATURE_COLUMNS if c not in not_counts]
    assert unplanted[sums_and_counts].tolist() == [0.0] * len(sums_and_counts)
    assert unplanted[list(factors)].tolist() == [1.0, 1.0]  # nothing grown, nothing lost
    assert np.isnan(unplanted["past_yield_ratio"])  # no history given
    assert unplanted["data_coverage"] == 1.0  # nothing was due, nothing is missing


def test_a_drought_leaves_more_dry_days():
    jujube = _farm(
        "farm-y", YANCHUAN, FieldPlan(id="j1", crop="jujube", area_ha=2.0, planting="04-20")
    )
    drought = Anomaly(
        kind="drought",
        region="yanchuan",
        start=date(2023, 5, 15),
        end=date(2023, 8, 15),
        intensity=2.0,
    )
    normal = _simulate(jujube, range(2023, 2024), YANCHUAN)
    dry = _simulate(jujube, range(2023, 2024), YANCHUAN, anomalies=[drought])
    as_of = date(2023, 8, 20)
    features = [field_features(_daily(t[0]), _seasons(t), as_of).iloc[0] for t in (normal, dry)]
    assert features[1]["dry_days"] > features[0]["dry_days"] + 10
    assert features[1]["rain_mm"] < features[0]["rain_mm"]


def test_missing_days_lower_data_coverage_and_break_nothing(world):
    _, daily, seasons = world
    as_of = date(2023, 8, 1)
    maize = seasons[(seasons["crop"] == "maize") & (seasons["year"] == 2023)]
    full = field_features(daily, maize, as_of).iloc[0]

    days = pd.to_datetime(daily["day"]).dt.date
    outage = (days >= date(2023, 6, 20)) & (days < date(2023, 7, 10))
    gappy = daily.loc[~outage].copy()
    blank = daily.loc[(days >= date(2023, 7, 15)) & (days < date(2023, 7, 20))].index
    gappy.loc[gappy.index.isin(blank), "air_temp_min_c":] = np.nan  # rows with no readings
    partial = field_features(gappy, maize, as_of).iloc[0]

    elapsed = full["days_since_planting"]
    assert full["data_coverage"] == 1.0
    assert partial["data_coverage"] == pytest.approx((elapsed - 25) / elapsed)
    assert partial["rain_mm"] <= full["rain_mm"]
    # Degree-days over the outage are interpolated, not taken as a cold spell.
    assert partial["gdd"] == pytest.approx(full["gdd"], rel=0.05)

    nothing = field_features(daily.iloc[:0], maize, as_of).iloc[0]
    assert nothing["data_coverage"] == 0.0
    assert np.isnan(nothing["gdd"]) and np.isnan(nothing["rain_mm"])


def test_ndvi_is_nan_without_a_camera_and_recent_is_the_last_two_weeks(world):
    _, daily, seasons = world
    as_of = date(2023, 6, 20)
    features = field_features(daily, seasons[seasons["year"] == 2023], as_of).set_index("crop")
    assert np.isnan(features.loc["maize", "ndvi_max"])
    tomato = daily[(daily["field"] == TOMATO.id)]
    days = pd.to_datetime(tomato["day"]).dt.date
    last = tomato.loc[(days >= as_of - timedelta(days=14)) & (days < as_of), "ndvi"]
    assert features.loc["tomato", "ndvi_recent"] == pytest.approx(last.mean())
    assert features.loc["tomato", "ndvi_max"] >= features.loc["tomato", "ndvi_recent"]
    assert features.loc["tomato", "ndvi_drop"] == pytest.approx(
        features.loc["tomato", "ndvi_max"] - features.loc["tomato", "ndvi_recent"]
    )
    assert np.isnan(features.loc["maize", "ndvi_drop"])


def test_et0_follows_the_simulators_hargreaves_within_a_tenth(world):
    truths, daily, _ = world
    maize = next(t for t in truths if t.crop == "maize" and t.year == 2023)
    as_of = date(2023, 9, 1)
    features = field_features(daily, _seasons([maize]), as_of).iloc[0]
    k = (as_of - maize.planted_on).days
    assert features["et0_mm"] == pytest.approx(maize.daily.et0_mm[:k].sum(), rel=0.1)


def _one_season(crop: str, planted_on: date, tmin: list[float]) -> tuple[pd.DataFrame, ...]:
    """A hand-made field-season and its daily rows from planting, one per ``tmin``."""
    seasons = pd.DataFrame(
        [{"farm": "farm-x", "field": "f1", "region": "zhongmou", "crop": crop,
          "soil": "loam", "area_ha": 1.0, "year": planted_on.year, "planted_on": planted_on}]
    ).loc[:, list(FIELD_SEASON_COLUMNS)]  # fmt: skip
    days = [planted_on + timedelta(days=k) for k in range(len(tmin))]
    daily = pd.DataFrame({c: 10.0 for c in DAILY_FIELD_COLUMNS[3:]}, index=range(len(tmin)))
    daily.insert(0, "day", days)
    daily.insert(0, "field", "f1")
    daily.insert(0, "farm", "farm-x")
    daily["air_temp_min_c"] = tmin
    return seasons, daily.loc[:, list(DAILY_FIELD_COLUMNS)]


def test_frost_days_count_cold_nights_before_as_of_only():
    threshold = CROPS["maize"].frost_damage_temp_c
    cold, mild = threshold - 2.0, threshold + 0.5
    # Days 0-9: four frosts (one exactly on the threshold, not below it) and a blank night.
    tmin = [cold, mild, cold, threshold, mild, np.nan, cold, mild, cold, mild]
    tmin += [cold] * 10  # days 10-19: frost every night, all on or after as_of
    seasons, daily = _one_season("maize", date(2023, 4, 1), tmin)
    as_of = date(2023, 4, 11)  # day 10

    features = field_features(daily, seasons, as_of).iloc[0]
    assert features["frost_days"] == 4.0
    assert field_features(daily, seasons, date(2023, 4, 1)).iloc[0]["frost_days"] == 0.0
    assert field_features(daily, seasons, date(2023, 4, 21)).iloc[0]["frost_days"] == 14.0
    no_temperatures = daily.assign(air_temp_min_c=np.nan)
    assert np.isnan(field_features(no_temperatures, seasons, as_of).iloc[0]["frost_days"])


def test_frost_days_match_the_simulators_nights_below_the_crops_frost_temperature():
    # Potato sown in March on the Loess Plateau meets late frosts.
    potato = _farm(
        "farm-y", YANCHUAN, FieldPlan(id="p1", crop="potato", area_ha=2.0, planting="03-20")
    )
    truths = _simulate(potato, range(2022, 2025), YANCHUAN)
    daily = pd.concat([_daily(t) for t in truths], ignore_index=True)
    seasons = _seasons(truths)
    frosty = 0
    for as_of in (date(2023, 4, 10), date(2024, 4, 25)):
        features = field_features(daily, seasons, as_of)
        for truth, frost in zip(truths, features["frost_days"], strict=True):
            recorded = (truth.harvest_end - truth.planted_on).days + 1  # _daily's rows
            k = min(max((as_of - truth.planted_on).days, 0), recorded)
            expected = (truth.daily.tmin_c[:k] < CROPS["potato"].frost_damage_temp_c).sum()
            assert frost == expected
            frosty += truth.year == as_of.year and expected > 0
    assert frosty > 0  # the check is not vacuous: a season in progress saw frost


def _history(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


# farm-x/f1 grew maize (potential 9 t/ha) in 2020-2022 and tomato (60) in 2019; farm-y is
# another field; 2023 is the season being forecast, harvested after the as_of below.
HISTORY = _history(
    [
        ("farm-x", "f1", "tomato", 2019, 30.0, date(2019, 8, 20)),
        ("farm-x", "f1", "maize", 2020, 7.2, date(2020, 10, 5)),
        ("farm-x", "f1", "maize", 2021, 5.4, date(2021, 10, 8)),
        ("farm-x", "f1", "maize", 2022, 8.1, date(2022, 10, 3)),
        ("farm-x", "f1", "maize", 2023, 9.0, date(2023, 10, 6)),
        ("farm-y", "f1", "maize", 2022, 1.0, date(2022, 10, 1)),
    ]
)


def test_past_yield_ratio_is_the_mean_over_the_fields_earlier_seasons():
    seasons, daily = _one_season("maize", date(2023, 6, 1), [15.0] * 30)
    features = field_features(daily, seasons, date(2023, 6, 20), history=HISTORY).iloc[0]
    expected = np.mean([30.0 / 60.0, 7.2 / 9.0, 5.4 / 9.0, 8.1 / 9.0])
    assert features["past_yield_ratio"] == pytest.approx(expected)
    # A duplicated record counts once, and a NaN yield is skipped.
    noisy = pd.concat(
        [HISTORY, HISTORY.iloc[[1]], _history([("farm-x", "f1", "maize", 2018, np.nan,
                                                 date(2018, 10, 1))])]
    )  # fmt: skip
    again = field_features(daily, seasons, date(2023, 6, 20), history=noisy).iloc[0]
    assert again["past_yield_ratio"] == pytest.approx(expected)


def test_past_yield_ratio_reads_only_seasons_harvested_before_as_of():
    seasons, daily = _one_season("maize", date(2023, 6, 1), [15.0] * 30)
    before_2022_harvest = date(2022, 10, 3)  # on the day the 2022 harvest ends: not yet known
    ratio = field_features(daily, seasons, before_2022_harvest, history=HISTORY).iloc[0][
        "past_yield_ratio"
    ]
    assert ratio == pytest.approx(np.mean([30.0 / 60.0, 7.2 / 9.0, 5.4 / 9.0]))

    for as_of in (before_2022_harvest, date(2023, 6, 20)):
        reference = field_features(daily, seasons, as_of, history=HISTORY)
        tampered = HISTORY.copy()
        later = pd.to_datetime(tampered["harvest_end"]).dt.date >= as_of
        assert later.any()
        tampered.loc[later, "yield_t_ha"] *= 3.0  # every season not yet harvested
        unharvested = _history([("farm-x", "f1", "maize", 2021, 99.0, None)])
        tampered = pd.concat([tampered, unharvested], ignore_index=True)
        after = field_features(daily, seasons, as_of, history=tampered)
        pd.testing.assert_frame_equal(reference, after)


def test_past_yield_ratio_never_reads_the_season_itself_or_later_ones():
    seasons, daily = _one_season("maize", date(2021, 6, 1), [15.0] * 30)
    # Long after every harvest: the 2021 season still sees only 2019 and 2020.
    features = field_features(daily, seasons, date(2024, 1, 1), history=HISTORY).iloc[0]
    assert features["past_yield_ratio"] == pytest.approx(np.mean([30.0 / 60.0, 7.2 / 9.0]))


def test_past_yield_ratio_is_nan_without_history_or_earlier_seasons(world):
    _, daily, seasons = world
    as_of = date(2023, 7, 1)
    assert field_features(daily, seasons, as_of)["past_yield_ratio"].isna().all()
    empty = field_features(daily, seasons, as_of, history=HISTORY.iloc[:0])
    assert empty["past_yield_ratio"].isna().all()
    other_fields = field_features(daily, seasons, as_of, history=HISTORY)  # farm-x, not farm-a
    assert other_fields["past_yield_ratio"].isna().all()
    one, one_daily = _one_season("maize", date(2019, 6, 1), [15.0] * 30)
    first = field_features(one_daily, one, date(2024, 1, 1), history=HISTORY).iloc[0]
    assert np.isnan(first["past_yield_ratio"])  # the field's first recorded season
    with pytest.raises(ValueError, match="harvest_end"):
        field_features(daily, seasons, as_of, history=HISTORY.drop(columns="harvest_end"))


# -- the store edge -----------------------------------------------------------------------

TINY = """
name = "tiny"
seed = 3
first_season = 2023
seasons = 1

[[regions]]
id = "zhongmou"
name = "Zhongmou"
lat = 34.72
lon = 113.98

[[farms]]
id = "farm-a"
region = "zhongmou"
lat = 34.7
lon = 113.9
fields = [
  { id = "f1", crop = "tomato", area_ha = 2.0, planting = "04-20", devices = 2, camera = true },
]

[[farms]]
id = "farm-b"
region = "zhongmou"
lat = 34.75
lon = 114.0
fields = [{ id = "f1", crop = "tomato", area_ha = 1.0, planting = "05-01", devices = 1 }]
"""


@pytest.fixture(params=["embedded", pytest.param("influx", marks=pytest.mark.services)])
def store(request):
    """Each store adapter: the daily frame must not depend on which one answers."""
    return request.getfixturevalue(f"{request.param}_store")


def test_daily_field_frame_reads_backfilled_telemetry_per_field_and_day(store, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    migrate(engine)
    sessions = session_factory(engine)
    scenario = parse_scenario(TINY)
    options = BackfillOptions(interval_s=3 * 3600, realism=False)
    backfill(scenario, store, sessions, StoreSink(store), options)

    start, end = day_start_ms(date(2023, 1, 1)), day_start_ms(date(2024, 1, 1))
    daily = daily_field_frame(store, start, end)
    assert tuple(daily.columns) == DAILY_FIELD_COLUMNS
    assert not daily.duplicated(["farm", "field", "day"]).any()
    assert isinstance(daily["day"].iloc[0], date)
    assert (daily["air_temp_min_c"] <= daily["air_temp_mean_c"]).all()
    assert (daily["air_temp_mean_c"] <= daily["air_temp_max_c"]).all()
    assert daily["solar_rad_mj_m2"].between(0.0, 35.0).all()
    by_farm = daily.groupby("farm")
    assert by_farm["ndvi"].count()["farm-b"] == 0 and by_farm["ndvi"].count()["farm-a"] > 100
    only_b = daily_field_frame(store, start, end, farms=["farm-b"])
    assert set(only_b["farm"]) == {"farm-b"}

    with sessions() as session:
        rows = list_seasons(session)
        seasons = pd.DataFrame(
            [
                {"farm": s.farm_id, "field": s.field_id, "region": s.field.farm.region_id,
                 "crop": s.crop, "soil": s.field.soil, "area_ha": s.area_ha, "year": s.year,
                 "planted_on": s.planted_on, "truth_end": s.harvest_end}
                for s in rows
            ]
        )  # fmt: skip
    farm = scenario.farms[0]
    truth = simulate_field_season(farm, farm.fields[0], scenario.regions[0], 2023, scenario.seed)
    as_of = truth.harvest_end
    features = field_features(daily, seasons, as_of).set_index("farm").loc["farm-a"]
    k = (as_of - truth.planted_on).days
    # Two gauges on one field count its rain once; UTC days shift a little across the edges.
    assert features["rain_mm"] == pytest.approx(truth.daily.rain_mm[:k].sum(), rel=0.1)
    assert features["gdd"] == pytest.approx(truth.daily.gdd[k - 1], rel=0.1)
    assert features["data_coverage"] == 1.0
    # Readings every 3 h: farm-b's one node's min/max register gives each day's true
    # extremes, both off by the same calibration offset of its thermometer; spot readings
    # alone would read the dawn low too warm and the afternoon high too cool.
    farm_b = scenario.farms[1]
    truth_b = simulate_field_season(
        farm_b, farm_b.fields[0], scenario.regions[0], 2023, scenario.seed
    )
    k_b = (truth_b.harvest_end - truth_b.planted_on).days
    days = [truth_b.planted_on + timedelta(days=i) for i in range(1, k_b - 1)]
    observed = daily[daily["farm"] == "farm-b"].set_index("day").reindex(days)
    errors = {
        column: observed[column].to_numpy() - true[1 : k_b - 1]
        for column, true in (
            ("air_temp_min_c", truth_b.daily.tmin_c),
            ("air_temp_max_c", truth_b.daily.tmax_c),
        )
    }
    low, high = (np.median(e) for e in errors.values())
    assert abs(low) < 1.0 and abs(low - high) < 0.2
    for error in errors.values():
        assert np.quantile(np.abs(error - np.median(error)), 0.9) < 0.3


# -- harvest windows ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def history() -> tuple[list[SeasonTruth], pd.DataFrame]:
    """Four farms of a region over six seasons: 2019-2022 for climatology, 2023-2024 to test."""
    farms = [_farm(f"farm-{i}", ZHONGMOU, GARLIC, MAIZE, TOMATO, shift=0.04 * i) for i in range(4)]
    truths = [t for farm in farms for t in _simulate(farm, range(2019, 2025))]
    daily = pd.concat([_daily(t) for t in truths], ignore_index=True)
    return truths, daily


def _of(daily: pd.DataFrame, truth: SeasonTruth) -> pd.DataFrame:
    """The daily rows of the truth's field (features read only those anyway; this is faster)."""
    return daily[(daily["farm"] == truth.farm) & (daily["field"] == truth.field)]


def _climatology(daily: pd.DataFrame, crop: str, before: date):
    return gdd_climatology(daily[pd.to_datetime(daily["day"]).dt.date < before], crop)


def test_harvest_quantiles_are_ordered(history):
    truths, daily = history
    climatologies = {
        c: _climatology(daily, c, date(2022, 7, 1)) for c in ("garlic", "maize", "tomato")
    }
    for truth in truths[:18]:
        for days in (-10, 0, 40, 90, 200):
            as_of = truth.planted_on + timedelta(days=days)
            gdd = field_features(_of(daily, truth), _seasons([truth]), as_of)["gdd"].iloc[0]
            window = harvest_window(
                truth.crop, climatologies[truth.crop], truth.planted_on, as_of, gdd
            )
            assert window.p10 <= window.p50 <= window.p90
            assert window.p10 > truth.planted_on


def test_a_later_planting_gives_a_later_p50_harvest(history):
    _, daily = history
    climatology = _climatology(daily, "maize", date(2023, 1, 1))
    early = harvest_window("maize", climatology, date(2023, 6, 1), date(2023, 5, 1), 0.0)
    late = harvest_window("maize", climatology, date(2023, 6, 25), date(2023, 5, 1), 0.0)
    assert late.p50 > early.p50


def test_a_crop_past_maturity_was_harvested_around_now(history):
    _, daily = history
    climatology = _climatology(daily, "garlic", date(2023, 1, 1))
    as_of = date(2023, 6, 1)
    window = harvest_window("garlic", climatology, date(2022, 10, 1), as_of, 2400.0)
    assert as_of - timedelta(days=30) < window.p10 <= window.p90 < as_of + timedelta(days=15)


def test_the_true_harvest_peak_lies_within_p10_p90_for_most_fields(history):
    truths, daily = history
    targets = [t for t in truths if t.year >= 2023]
    inside = []
    for truth in targets:
        climatology = _climatology(daily, truth.crop, truth.planted_on)
        for share in (0.0, 0.5, 0.8):  # as of planting, mid-season, late season
            as_of = truth.planted_on + timedelta(
                days=round(share * (truth.maturity - truth.planted_on).days)
            )
            gdd = field_features(_of(daily, truth), _seasons([truth]), as_of)["gdd"].iloc[0]
            window = harvest_window(truth.crop, climatology, truth.planted_on, as_of, gdd)
            inside.append(window.p10 <= truth.harvest_peak <= window.p90)
    assert np.mean(inside) >= 0.65, f"{sum(inside)} of {len(inside)} inside"


def test_climatology_needs_temperatures_and_fills_the_year(history):
    _, daily = history
    with pytest.raises(ValueError, match="no temperatures"):
        gdd_climatology(daily.iloc[:0], "maize")
    summer = daily[pd.to_datetime(daily["day"]).dt.month.isin([6, 7, 8])]
    climatology = gdd_climatology(summer, "maize")
    assert np.isfinite(climatology.mean_gdd).all() and (climatology.sd_gdd > 0).all()
    assert climatology.mean_gdd[195] > 10.0  # mid-July, maize base 10 C
    assert 0.0 <= climatology.lag1_autocorrelation < 1.0


def test_harvest_windows_adds_a_window_per_features_row(history):
    truths, daily = history
    seasons = _seasons([t for t in truths if t.year == 2024 and t.farm == "farm-0"])
    features = field_features(daily, seasons, date(2024, 5, 1))
    climatologies = {
        (c, "zhongmou"): _climatology(daily, c, date(2023, 1, 1))
        for c in ("garlic", "maize", "tomato")
    }
    windows = harvest_windows(features, climatologies)
    frost = ["p_frost_end", "frost_yield_factor"]
    assert list(windows.columns) == [*features.columns, *HARVEST_WINDOW_COLUMNS, *frost]
    assert (windows["harvest_p10"] <= windows["harvest_p90"]).all()
    with pytest.raises(KeyError, match="tomato"):
        harvest_windows(features, {k: v for k, v in climatologies.items() if k[0] != "tomato"})


# -- weekly supply ------------------------------------------------------------------------


def _supply_fields() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "crop": ["garlic", "garlic", "maize"],
            "region": ["zhongmou", "zhongmou", "zhongmou"],
            "area_ha": [3.0, 2.0, 5.0],
            "yield_t_ha_p10": [15.0, 12.0, 6.0],
            "yield_t_ha_p50": [20.0, 18.0, 8.0],
            "yield_t_ha_p90": [24.0, 21.0, 9.5],
            "harvest_p10": [date(2024, 5, 20), date(2024, 5, 24), date(2024, 9, 25)],
            "harvest_p50": [date(2024, 5, 25), date(2024, 5, 29), date(2024, 10, 2)],
            "harvest_p90": [date(2024, 6, 2), date(2024, 6, 5), date(2024, 10, 12)],
        }
    )


def test_weekly_supply_sums_to_the_quantity_less_post_harvest_losses():
    fields = _supply_fields()
    supply = weekly_supply(fields)
    assert tuple(supply.columns) == SUPPLY_COLUMNS
    assert all(w.weekday() == 0 for w in supply["week"])
    totals = supply.groupby("crop")["supply_kg_p50"].sum()
    kept = {c: 1.0 - CROPS[c].postharvest_loss_per_week for c in ("garlic", "maize")}
    assert totals["garlic"] == pytest.approx((20.0 * 3.0 + 18.0 * 2.0) * 1000 * kept["garlic"])
    assert totals["maize"] == pytest.approx(8.0 * 5.0 * 1000 * kept["maize"])
    maize = supply[supply["crop"] == "maize"]
    assert maize["week"].min() <= date(2024, 9, 23) and maize["week"].max() >= date(2024, 10, 7)


def test_weekly_supply_quantiles_are_ordered_and_independence_narrows_them():
    fields = _supply_fields()
    independent = weekly_supply(fields)
    together = weekly_supply(fields, field_correlation=1.0)
    for supply in (independent, together):
        assert (supply["supply_kg_p10"] <= supply["supply_kg_p50"]).all()
        assert (supply["supply_kg_p50"] <= supply["supply_kg_p90"]).all()
    garlic = [s[s["crop"] == "garlic"] for s in (independent, together)]
    spread = [(g["supply_kg_p90"] - g["supply_kg_p10"]).sum() for g in garlic]
    assert spread[0] < spread[1]
    # Fully correlated fields: the week's P90 is the sum of the fields' P90s.
    one = weekly_supply(fields.iloc[:1])
    two = weekly_supply(fields.iloc[1:2])
    summed = pd.concat([one, two]).groupby("week")["supply_kg_p90"].sum()
    garlic_together = garlic[1].set_index("week")["supply_kg_p90"]
    pd.testing.assert_series_equal(garlic_together, summed, check_names=False)


def test_weekly_supply_of_no_fields_is_empty():
    supply = weekly_supply(_supply_fields().iloc[:0])
    assert supply.empty and tuple(supply.columns) == SUPPLY_COLUMNS


def _orchard(days: int, tmin: float, tmax: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A Korla pear field from bud break (2024-04-01) with the same weather every day."""
    start = date(2024, 4, 1)
    season = pd.DataFrame(
        [
            {"farm": "k-1", "field": "f01", "region": "korla", "crop": "fragrant_pear",
             "soil": "sandy_loam", "area_ha": 2.0, "year": 2024, "planted_on": start}
        ]
    )  # fmt: skip
    daily = pd.DataFrame(
        {
            "farm": "k-1",
            "field": "f01",
            "day": [start + timedelta(days=k) for k in range(days)],
            "air_temp_min_c": tmin,
            "air_temp_max_c": tmax,
            "air_temp_mean_c": (tmin + tmax) / 2,
            "rain_mm": 0.5,
            "solar_rad_mj_m2": 20.0,
            "air_rh_mean_pct": 50.0,
            "soil_moisture_10cm_pct": 25.0,
            "soil_moisture_30cm_pct": 25.0,
            "soil_temp_mean_c": 15.0,
            "ndvi": np.nan,
        }
    ).loc[:, list(DAILY_FIELD_COLUMNS)]
    return daily, season


def test_a_frost_at_blossom_lowers_the_stress_factor_by_the_catalogs_sensitivity():
    pear = CROPS["fragrant_pear"]
    daily, season = _orchard(60, 8.0, 22.0)
    as_of = date(2024, 5, 30)
    calm = field_features(daily, season, as_of).iloc[0]
    assert calm["stress_factor"] == 1.0
    frosty = daily.copy()
    frosty.loc[3, "air_temp_min_c"] = pear.frost_damage_temp_c - 2.0  # day 4 after bud break
    hit = field_features(frosty, season, as_of).iloc[0]
    expected = np.exp(-pear.frost_sensitivity_per_degree_day * 2.0)
    assert hit["stress_factor"] == pytest.approx(expected)
    # The same frost before the date it is asked about is the only one that counts.
    assert field_features(frosty, season, date(2024, 4, 3)).iloc[0]["stress_factor"] == 1.0


def test_heat_counts_only_in_flowering_and_yield_formation():
    pear = CROPS["fragrant_pear"]
    hot = pear.heat_stress_threshold_c + 3.0
    # Hot from the first day: early on the tree is not yet in mid-season, so the
    # factor is still 1 after a week; by the end of the season heat has cost yield.
    daily, season = _orchard(200, 18.0, hot)
    early = field_features(daily, season, date(2024, 4, 8)).iloc[0]
    late = field_features(daily, season, date(2024, 10, 15)).iloc[0]
    assert early["stress_factor"] == 1.0 and early["heat_days"] == 7
    assert late["stress_factor"] < 0.9
    flowering_days = -np.log(late["stress_factor"]) / (3.0 * pear.heat_sensitivity_per_degree_day)
    assert 0 < flowering_days < late["heat_days"]


def test_a_past_season_lost_to_frost_does_not_make_its_field_look_poorly_run():
    pear = CROPS["fragrant_pear"]
    calm, _ = _orchard(200, 8.0, 22.0)
    frosty = calm.copy()
    frosty.loc[3, "air_temp_min_c"] = pear.frost_damage_temp_c - 2.0  # at blossom
    factor = np.exp(-pear.frost_sensitivity_per_degree_day * 2.0)
    # The field's 2024 season: the frost took its agronomic share, the rest was normal.
    recorded = pd.DataFrame(
        [{"farm": "k-1", "field": "f01", "crop": "fragrant_pear", "year": 2024,
          "yield_t_ha": 0.8 * pear.potential_yield_t_ha * factor, "soil": "sandy_loam",
          "harvest_end": date(2024, 10, 10), "planted_on": date(2024, 4, 1)}]
    )  # fmt: skip
    history = recorded_history(frosty, recorded)
    assert history["stress_factor"].iloc[0] == pytest.approx(factor)
    assert recorded_history(calm, recorded)["stress_factor"].iloc[0] == 1.0
    _, next_season = _orchard(10, 8.0, 22.0)
    next_season = next_season.assign(year=2025, planted_on=date(2025, 4, 1))
    ratio = field_features(frosty, next_season, date(2025, 4, 10), history=history).iloc[0]
    assert ratio["past_yield_ratio"] == pytest.approx(0.8)
    raw = field_features(frosty, next_season, date(2025, 4, 10), history=recorded)
    assert raw.iloc[0]["past_yield_ratio"] == pytest.approx(0.8 * factor)


def test_recorded_history_leaves_seasons_without_a_harvest_or_telemetry_at_one():
    calm, _ = _orchard(30, 8.0, 22.0)
    seasons = pd.DataFrame(
        [{"farm": "k-1", "field": "f01", "crop": "fragrant_pear", "year": 2025, "soil": "loam",
          "yield_t_ha": np.nan, "harvest_end": None, "planted_on": date(2025, 4, 1)},
         {"farm": "k-2", "field": "f01", "crop": "fragrant_pear", "year": 2024, "soil": "loam",
          "yield_t_ha": 20.0, "harvest_end": date(2024, 10, 1), "planted_on": date(2024, 4, 1)}]
    )  # fmt: skip
    history = recorded_history(calm, seasons)
    assert list(history["stress_factor"]) == list(history["water_factor"]) == [1.0, 1.0]
    with pytest.raises(ValueError, match="planted_on"):
        recorded_history(calm, seasons.drop(columns="planted_on"))


def test_the_water_factor_falls_by_ky_from_field_capacity_to_the_wilting_point():
    pear, soil = CROPS["fragrant_pear"], SOILS["sandy_loam"]  # _orchard's field
    daily, season = _orchard(60, 8.0, 22.0)
    as_of = date(2024, 5, 30)

    def water_factor(moisture_pct: float) -> float:
        wet = daily.assign(soil_moisture_10cm_pct=moisture_pct, soil_moisture_30cm_pct=moisture_pct)
        return float(field_features(wet, season, as_of).iloc[0]["water_factor"])

    assert water_factor(soil.field_capacity_pct) == 1.0
    assert water_factor(stress_moisture_pct(soil, pear) + 0.1) == 1.0  # readily available
    assert water_factor(soil.wilting_point_pct) == pytest.approx(1.0 - pear.ky)
    halfway = (stress_moisture_pct(soil, pear) + soil.wilting_point_pct) / 2
    assert water_factor(halfway) == pytest.approx(1.0 - pear.ky / 2)
    # Days without a moisture reading are left out, not read as dry or wet.
    wp = soil.wilting_point_pct
    gaps = daily.assign(soil_moisture_10cm_pct=wp, soil_moisture_30cm_pct=wp)
    gaps.loc[::2, ["soil_moisture_10cm_pct", "soil_moisture_30cm_pct"]] = np.nan
    assert field_features(gaps, season, as_of).iloc[0]["water_factor"] == pytest.approx(
        1.0 - pear.ky
    )
    none = daily.assign(soil_moisture_10cm_pct=np.nan, soil_moisture_30cm_pct=np.nan)
    assert field_features(none, season, as_of).iloc[0]["water_factor"] == 1.0


def test_the_water_factor_reads_the_root_zone_from_both_probes():
    pear, soil = CROPS["fragrant_pear"], SOILS["sandy_loam"]
    daily, season = _orchard(60, 8.0, 22.0)
    as_of = date(2024, 5, 30)
    wp = soil.wilting_point_pct

    def water_factor(frame: pd.DataFrame) -> float:
        return float(field_features(frame, season, as_of).iloc[0]["water_factor"])

    # A dry topsoil over a subsoil at the stress limit (a stunted crop that drew little
    # on 20-40 cm): the 30 cm probe alone reads no stress, the root zone is halfway.
    limit = stress_moisture_pct(soil, pear)
    split = daily.assign(soil_moisture_10cm_pct=wp, soil_moisture_30cm_pct=limit)
    assert water_factor(split) == pytest.approx(1.0 - pear.ky / 2)
    # One probe out: the other stands for the root zone.
    only_30 = daily.assign(soil_moisture_10cm_pct=np.nan, soil_moisture_30cm_pct=wp)
    only_10 = daily.assign(soil_moisture_10cm_pct=wp, soil_moisture_30cm_pct=np.nan)
    assert water_factor(only_30) == water_factor(only_10) == pytest.approx(1.0 - pear.ky)


def test_a_past_drought_does_not_make_its_field_look_poorly_run():
    pear, soil = CROPS["fragrant_pear"], SOILS["sandy_loam"]
    dry, _ = _orchard(200, 8.0, 22.0)
    halfway = (stress_moisture_pct(soil, pear) + soil.wilting_point_pct) / 2
    # The season through: Ta/Tp = 1/2.
    dry = dry.assign(soil_moisture_10cm_pct=halfway, soil_moisture_30cm_pct=halfway)
    recorded = pd.DataFrame(
        [{"farm": "k-1", "field": "f01", "crop": "fragrant_pear", "year": 2024,
          "yield_t_ha": 0.8 * pear.potential_yield_t_ha * (1.0 - pear.ky / 2),
          "soil": "sandy_loam", "harvest_end": date(2024, 10, 10),
          "planted_on": date(2024, 4, 1)}]
    )  # fmt: skip
    history = recorded_history(dry, recorded)
    _, next_season = _orchard(10, 8.0, 22.0)
    next_season = next_season.assign(year=2025, planted_on=date(2025, 4, 1))
    features = field_features(dry, next_season, date(2025, 4, 10), history=history).iloc[0]
    assert features["past_yield_ratio"] == pytest.approx(0.8)
