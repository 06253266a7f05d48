"""Yield quantiles: calibrated P10/P50/P90, baselines, drivers, persisted versions.

The data are simulated field-seasons of the shipped scenarios, built straight
from the simulator's truth (no store, no devices) so the suite stays fast:
features as of 30 days before the harvest peak, computed by
:func:`season_features` below, which mimics what telemetry features would be
(the names follow ``forecasting.features`` where they mean the same thing),
plus the field's recorded history of yields (what the registry knows).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, cross_val_score
from threadpoolctl import threadpool_limits

from agrimatch.agronomy import CROPS, SOILS
from agrimatch.scenario import Anomaly, FieldPlan, load_scenario
from firmware_sim.world.season import SeasonTruth, simulate_field_season
from forecasting.baselines import LastSeasonBaseline, RegionalMeanBaseline
from forecasting.drivers import feature_effects, field_drivers
from forecasting.features import (
    crop_degree_days,
    et0_hargreaves_radiation_mm,
    root_zone_moisture_pct,
    water_stress_coefficient,
)
from forecasting.metrics import interval_coverage, pinball_loss, quantile_metrics, wape
from forecasting.model_store import (
    IncompatibleModelError,
    ModelStoreError,
    list_models,
    load_model,
    save_model,
)
from forecasting.yield_model import YieldQuantileModel

SCENARIOS = ("garlic-glut", "korla-pear", "snow-lotus-surge", "yellow-river-jujube")
FARMS_PER_SCENARIO = 20  # 40 fields each: 160 fields, 480 training and 160 held-out seasons
HISTORY_SEASONS = 2  # seasons recorded before the scenario's first: their yields only
LEAD_DAYS = 30
RECENT_DAYS = 14
FEATURES = (
    "days_since_planting",
    "gdd",
    "gdd_fraction",
    "rain_mm",
    "dry_days",
    "heat_days",
    "frost_days",
    "ndvi_recent",
    "ndvi_drop",
    "past_yield_ratio",
    "water_factor",
)
WATER_FEATURES = {"rain_mm", "dry_days", "water_factor"}
NDVI_FEATURES = {"ndvi_recent", "ndvi_drop"}
# Coverage of [P10, P90] on one held-out season: the target is 80 %. The tolerance is
# +-7 points, not the backtest's +-5: 160 held-out fields give a binomial standard
# error of 3.2 points, and the fields of a region share the season's weather, so one
# season is a mix of four regional draws, not 160 independent ones (measured: 76 %,
# from 38 % in frost-hit Korla and 88-90 % elsewhere); +-5 needs many seasons.
COVERAGE_TOLERANCE = 0.07


def season_features(truth: SeasonTruth, plan: FieldPlan, lead_days: int) -> dict[str, object]:
    """A field-season's features as of ``harvest_peak - lead_days`` from the simulator's
    daily arrays, only days before that date: what the field's sensors would have told.

    Degree-days with the crop's base and cap; rain; dry days (30 cm soil moisture below
    the readily-available-water limit, FAO-56); heat and frost days (Tmax above the
    crop's heat-stress threshold, Tmin below its frost-damage temperature); NDVI over
    the last two weeks, only where the field has a canopy camera (NaN elsewhere, as in
    the telemetry).
    """
    crop, soil, daily = CROPS[truth.crop], SOILS[truth.soil], truth.daily
    as_of = truth.harvest_peak - timedelta(days=lead_days)
    days = max(1, min(len(daily), (as_of - truth.planted_on).days))
    window = slice(0, days)
    tmin, tmax = daily.tmin_c[window], daily.tmax_c[window]
    low, high = crop.base_temp_c, crop.upper_temp_c
    gdd = float(((np.clip(tmax, low, high) + np.clip(tmin, low, high)) / 2.0 - low).sum())
    dry_limit = soil.field_capacity_pct - crop.depletion_fraction * soil.available_water_pct
    recent = daily.ndvi[max(0, days - RECENT_DAYS) : days]
    progress = np.cumsum(crop_degree_days(crop, tmin, tmax)) / crop.gdd_to_maturity
    moisture = root_zone_moisture_pct(
        daily.soil_moisture_10cm_pct[window], daily.soil_moisture_30cm_pct[window]
    )
    ks = water_stress_coefficient(
        moisture, soil.field_capacity_pct, soil.wilting_point_pct, crop.depletion_fraction
    )
    et0 = et0_hargreaves_radiation_mm(tmin, tmax, daily.radiation_mj_m2[window])
    demand = np.where(progress <= 1.0, crop.kc_at(progress) * et0, 0.0)
    used = float((ks * demand).sum()) / float(demand.sum()) if demand.sum() > 0 else 1.0
    return {
        "farm": truth.farm,
        "field": truth.field,
        "region": truth.region,
        "crop": truth.crop,
        "soil": truth.soil,
        "area_ha": truth.area_ha,
        "year": truth.year,
        "planted_on": truth.planted_on,
        "as_of": as_of,
        "days_since_planting": float(days),
        "gdd": gdd,
        "gdd_fraction": gdd / crop.gdd_to_maturity,
        "rain_mm": float(daily.rain_mm[window].sum()),
        "dry_days": float((daily.soil_moisture_30cm_pct[window] < dry_limit).sum()),
        "heat_days": float((tmax > crop.heat_stress_threshold_c).sum()),
        "frost_days": float((tmin < crop.frost_damage_temp_c).sum()),
        "ndvi_recent": float(recent.mean()) if plan.camera else np.nan,
        "ndvi_drop": float(daily.ndvi[window].max() - recent.mean()) if plan.camera else np.nan,
        "water_factor": max(0.0, 1.0 - crop.ky * (1.0 - used)),
    }


@lru_cache(maxsize=4)
def field_seasons(
    farms_per_scenario: int = FARMS_PER_SCENARIO, lead_days: int = LEAD_DAYS
) -> pd.DataFrame:
    """Features, yield (t/ha) and evaluation-only truth of every scenario field-season.

    ``season_index`` 0 is the scenario's first season. ``past_yield_ratio`` is the
    mean of the field's earlier recorded yields over the crop's potential (NaN for a
    field without history); the ``HISTORY_SEASONS`` before the first season provide
    history only and are dropped. ``water_stress`` is truth, never a feature.
    """
    rows = []
    for name in SCENARIOS:
        scenario = load_scenario(name)
        regions = {r.id: r for r in scenario.regions}
        first = scenario.first_season
        for farm in scenario.all_farms()[:farms_per_scenario]:
            for year in range(first - HISTORY_SEASONS, first + scenario.seasons):
                for plan in farm.fields:
                    truth = simulate_field_season(
                        farm, plan, regions[farm.region], year, scenario.seed, scenario.anomalies
                    )
                    row = season_features(truth, plan, lead_days)
                    row.update(
                        season_index=year - first,
                        yield_t_ha=truth.yield_t_ha,
                        water_stress=truth.water_stress,
                    )
                    rows.append(row)
    frame = pd.DataFrame(rows).sort_values(["farm", "field", "year"], ignore_index=True)
    ratio = frame["yield_t_ha"] / frame["crop"].map(lambda c: CROPS[c].potential_yield_t_ha)
    frame["past_yield_ratio"] = ratio.groupby([frame["farm"], frame["field"]]).transform(
        lambda s: s.shift(1).expanding().mean()
    )
    return frame[frame["season_index"] >= 0].reset_index(drop=True)


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training seasons and the held-out last season of each scenario."""
    last = frame["season_index"].max()
    return frame[frame["season_index"] < last], frame[frame["season_index"] == last]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # The boosted trees' OpenMP threads spin-wait; on a shared two-core runner that
    # made a fit many times slower than on one thread.
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return split(field_seasons())


@pytest.fixture(scope="module")
def model(data: tuple[pd.DataFrame, pd.DataFrame]) -> YieldQuantileModel:
    train, _ = data
    return YieldQuantileModel(feature_columns=FEATURES).fit(train, train["yield_t_ha"])


def small_model() -> YieldQuantileModel:
    """A cheap configuration for tests about the estimator's mechanics, not its skill."""
    return YieldQuantileModel(feature_columns=FEATURES, max_iter=30, calibration="split")


# -- the estimator -----------------------------------------------------------------------


def test_quantiles_are_monotone_non_negative_and_p50_is_predict(model, data):
    _, held_out = data
    quantiles = model.predict_quantiles(held_out)
    assert list(quantiles.columns) == ["p10", "p50", "p90"]
    assert quantiles.index.equals(held_out.index)
    assert (quantiles.to_numpy() >= 0).all()
    assert (quantiles["p10"] <= quantiles["p50"]).all()
    assert (quantiles["p50"] <= quantiles["p90"]).all()
    assert np.array_equal(model.predict(held_out), quantiles["p50"].to_numpy())


def test_p10_to_p90_covers_80_percent_of_a_held_out_season(model, data):
    _, held_out = data
    quantiles = model.predict_quantiles(held_out)
    coverage = interval_coverage(held_out["yield_t_ha"], quantiles["p10"], quantiles["p90"])
    assert abs(coverage - 0.80) <= COVERAGE_TOLERANCE, coverage


def regional_wapes(
    model: YieldQuantileModel,
    data: tuple[pd.DataFrame, pd.DataFrame],
    rows: pd.Series | slice = slice(None),
) -> tuple[float, float]:
    """WAPE of the model's P50 and of the regional-mean baseline on held-out ``rows``."""
    train, held_out = data
    held_out = held_out.loc[rows]
    baseline = RegionalMeanBaseline().fit(train, train["yield_t_ha"])
    return (
        wape(held_out["yield_t_ha"], model.predict(held_out)),
        wape(held_out["yield_t_ha"], baseline.predict(held_out)),
    )


def test_p50_beats_the_regional_mean_baseline_on_a_held_out_season(model, data):
    model_wape, baseline_wape = regional_wapes(model, data)
    # Measured: 14 % vs 18 %. The held-out season holds Korla's bloom frost, unlike any
    # of the three training seasons: no model learns a shock it never saw, and the pear
    # P50 misses by about 45 % there (the next test covers the other regions).
    assert model_wape <= 0.9 * baseline_wape, (model_wape, baseline_wape)


def test_p50_is_30_percent_better_than_the_regional_mean_where_no_unseen_shock_hit(model, data):
    _, held_out = data
    seen = held_out["region"] != "korla"
    model_wape, baseline_wape = regional_wapes(model, data, seen)
    # Measured: 7 % vs 12 % (the garlic drought of 2024 included): the backtest's bar.
    assert model_wape <= 0.7 * baseline_wape, (model_wape, baseline_wape)


def test_predict_is_pure(model, data):
    _, held_out = data
    before = held_out.copy()
    first = model.predict_quantiles(held_out)
    second = model.predict_quantiles(held_out.iloc[::-1]).loc[held_out.index]
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(held_out, before)


def test_fit_keeps_the_hyperparameters_as_given_and_learns_into_underscored_attributes(data):
    train, _ = data
    estimator = small_model()
    params = estimator.get_params()
    assert estimator.fit(train, train["yield_t_ha"]) is estimator
    assert estimator.get_params() == params
    assert estimator.feature_columns_ == list(FEATURES)
    assert estimator.training_window_ == (int(train["year"].min()), int(train["year"].max()))


def test_clone_gives_an_unfitted_estimator_with_the_same_parameters(model):
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "regressors_")


def test_cross_val_score_runs_over_seasons(data):
    train, _ = data
    scores = cross_val_score(
        small_model(),
        train,
        train["yield_t_ha"],
        groups=train["year"],
        cv=GroupKFold(n_splits=3),
        scoring="neg_mean_absolute_error",
    )
    assert len(scores) == 3 and np.all(np.isfinite(scores)) and np.all(scores < 0)


def test_a_crop_outside_the_catalog_is_refused(data):
    train, _ = data
    odd = train.assign(crop="banana")
    with pytest.raises(ValueError, match="banana"):
        small_model().fit(odd, odd["yield_t_ha"])


# -- baselines ---------------------------------------------------------------------------


def history_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "farm": ["a", "a", "a", "b", "b"],
            "field": ["f1", "f1", "f1", "f1", "f1"],
            "crop": ["garlic", "garlic", "garlic", "garlic", "maize"],
            "region": ["zm", "zm", "zm", "zm", "zm"],
            "year": [2021, 2022, 2023, 2022, 2023],
            "yield_t_ha": [10.0, 12.0, 14.0, 8.0, 9.0],
        }
    )


def test_regional_mean_baseline_is_the_mean_per_crop_and_region_with_fallbacks():
    history = history_frame()
    baseline = RegionalMeanBaseline().fit(history, history["yield_t_ha"])
    new = pd.DataFrame({"crop": ["garlic", "garlic", "tomato"], "region": ["zm", "korla", "x"]})
    # garlic in zm: (10 + 12 + 14 + 8) / 4; garlic elsewhere: the crop's mean; unknown: all.
    assert baseline.predict(new) == pytest.approx([11.0, 11.0, 10.6])
    quantiles = baseline.predict_quantiles(new)
    assert np.array_equal(quantiles["p50"].to_numpy(), baseline.predict(new))
    assert (quantiles["p10"] <= quantiles["p50"]).all()
    assert (quantiles["p50"] <= quantiles["p90"]).all()


def test_last_season_baseline_takes_the_fields_latest_earlier_season_of_the_same_crop():
    history = history_frame()
    baseline = LastSeasonBaseline().fit(history, history["yield_t_ha"])
    new = pd.DataFrame(
        {
            "farm": ["a", "a", "b", "c"],
            "field": ["f1", "f1", "f1", "f1"],
            "crop": ["garlic", "garlic", "garlic", "garlic"],
            "region": ["zm", "zm", "zm", "zm"],
            "year": [2024, 2023, 2024, 2024],
        }
    )
    # 2024 after 14 (2023); 2023 after 12 (2022, never itself); b/f1 last grew garlic
    # in 2022 (8); a new field gets the regional mean.
    assert baseline.predict(new) == pytest.approx([14.0, 12.0, 8.0, 11.0])


# -- drivers -----------------------------------------------------------------------------


def _drought_hit(train: pd.DataFrame, held_out: pd.DataFrame) -> pd.Series:
    """Per held-out field, how much its water stress (truth) exceeds what is usual for its
    crop: a potato is always thirsty, a jujube in a dry year is hit."""
    usual = held_out["crop"].map(train.groupby("crop")["water_stress"].median())
    return held_out["water_stress"] - usual


def test_drivers_name_the_water_and_canopy_features_for_a_drought_hit_field(model, data):
    # In the crop model's world a drought lowers the yield through the root zone's water
    # (Ks, which the water factor reads from both probes) and through the canopy it
    # stunts and senesces early, which a camera sees as NDVI. The most drought-hit field
    # (measured: a garlic field of the 2024 Zhongmou drought, no camera) must be told so
    # by a water feature; the most drought-hit field with a camera (a Yanchuan jujube)
    # by a water feature and by NDVI, each lowering its forecast.
    train, held_out = data
    excess = _drought_hit(train, held_out)
    watched = excess[held_out["ndvi_recent"].notna()]
    assert excess.max() > 0.1 and watched.max() > 0.1
    for hit, canopy in ((excess.idxmax(), False), (watched.idxmax(), True)):
        drivers = field_drivers(model, held_out.loc[[hit]], top_k=3)
        lowered = set(drivers.loc[drivers["effect_t_ha"] < 0, "feature"])
        assert lowered & WATER_FEATURES, drivers
        if canopy:
            assert lowered & NDVI_FEATURES, drivers
        assert list(drivers["rank"]) == list(range(1, len(drivers) + 1))


def test_drivers_of_a_field_do_not_depend_on_the_other_fields_forecast_with_it(model, data):
    _, held_out = data
    alone = field_drivers(model, held_out.iloc[[5]])
    together = field_drivers(model, held_out.iloc[:20])
    one = together[(together["farm"] == alone["farm"].iloc[0])]
    one = one[one["field"] == alone["field"].iloc[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, one)


def test_a_feature_the_field_did_not_observe_is_not_a_driver(model, data):
    _, held_out = data
    without_camera = held_out[held_out["ndvi_recent"].isna()].iloc[:10]
    effects = feature_effects(model, without_camera)
    assert effects["ndvi_recent"].isna().all()
    drivers = field_drivers(model, without_camera, top_k=len(FEATURES))
    assert "ndvi_recent" not in set(drivers["feature"])


# -- persistence -------------------------------------------------------------------------


def held_out_metrics(model: YieldQuantileModel, held_out: pd.DataFrame) -> dict[str, float]:
    return quantile_metrics(held_out["yield_t_ha"], model.predict_quantiles(held_out))


def test_a_persisted_model_predicts_exactly_the_same(model, data, tmp_path):
    _, held_out = data
    manifest = save_model(model, tmp_path, metrics=held_out_metrics(model, held_out))
    loaded, loaded_manifest = load_model(tmp_path)
    assert loaded_manifest == manifest
    pd.testing.assert_frame_equal(
        loaded.predict_quantiles(held_out), model.predict_quantiles(held_out)
    )


def test_the_manifest_names_the_version_window_features_and_metrics(model, data, tmp_path):
    train, held_out = data
    metrics = held_out_metrics(model, held_out)
    manifest = save_model(model, tmp_path, metrics=metrics)
    first, last = int(train["year"].min()), int(train["year"].max())
    crops = "+".join(sorted(train["crop"].unique()))
    assert manifest.version.startswith(f"yield-{crops}-{last}-")
    stored = json.loads((tmp_path / manifest.version / "manifest.json").read_text())
    assert stored["training_window"] == [first, last]
    assert stored["feature_columns"] == list(FEATURES)
    assert stored["sklearn_version"] == sklearn.__version__
    assert stored["package_version"] and stored["created_at"]
    assert {"wape_p50", "pinball_p50", "coverage_p10_p90"} <= set(stored["metrics"])
    assert stored["metrics"]["wape_p50"] == pytest.approx(metrics["wape_p50"])
    assert [m.version for m in list_models(tmp_path)] == [manifest.version]


def test_loading_a_model_saved_by_another_sklearn_minor_fails_clearly(model, data, tmp_path):
    _, held_out = data
    manifest = save_model(model, tmp_path, metrics=held_out_metrics(model, held_out))
    path = tmp_path / manifest.version / "manifest.json"
    stored = json.loads(path.read_text())
    stored["sklearn_version"] = "1.2.2"
    path.write_text(json.dumps(stored))
    with pytest.raises(IncompatibleModelError, match=r"scikit-learn 1\.2\.2.*retrain"):
        load_model(tmp_path, manifest.version)


def test_a_model_file_that_does_not_match_its_manifest_is_refused(model, data, tmp_path):
    _, held_out = data
    manifest = save_model(model, tmp_path, metrics=held_out_metrics(model, held_out))
    (tmp_path / manifest.version / "model.joblib").write_bytes(b"not the model")
    with pytest.raises(ModelStoreError, match="SHA-256"):
        load_model(tmp_path, manifest.version)


# -- metrics -----------------------------------------------------------------------------


def test_wape_pinball_and_coverage_on_hand_computed_values():
    truth = np.array([10.0, 20.0, 30.0])
    assert wape(truth, [12.0, 18.0, 30.0]) == pytest.approx(4.0 / 60.0)
    # Under-forecasting by 2 costs q * 2 at quantile q; over-forecasting (1 - q) * 2.
    assert pinball_loss([10.0], [8.0], 0.9) == pytest.approx(1.8)
    assert pinball_loss([10.0], [12.0], 0.9) == pytest.approx(0.2)
    assert interval_coverage(truth, [9.0, 21.0, 25.0], [11.0, 25.0, 30.0]) == pytest.approx(2 / 3)


def test_a_drought_scenario_lowers_p50(model, data):
    # The held-out Yanchuan season again, once as it was and once with a summer drought
    # injected into the simulated weather: the same fields, the same history.
    _, held_out = data
    scenario = load_scenario("yellow-river-jujube")
    year = scenario.first_season + scenario.seasons - 1
    regions = {r.id: r for r in scenario.regions}
    drought = Anomaly(
        kind="drought", region="yanchuan", start=date(year, 5, 1), end=date(year, 8, 31)
    )
    past = held_out.set_index(["farm", "field"])["past_yield_ratio"]
    frames, truths = {}, {}
    for dry in (False, True):
        anomalies = (*scenario.anomalies, drought) if dry else scenario.anomalies
        rows, yields = [], []
        for farm in scenario.all_farms()[:FARMS_PER_SCENARIO]:
            for plan in farm.fields:
                truth = simulate_field_season(
                    farm, plan, regions[farm.region], year, scenario.seed, anomalies
                )
                row = season_features(truth, plan, LEAD_DAYS)
                row["past_yield_ratio"] = past[(farm.id, plan.id)]
                rows.append(row)
                yields.append(truth.yield_t_ha)
        frames[dry], truths[dry] = pd.DataFrame(rows), np.array(yields)
    # (A drought also moves the harvest peak, and with it the date features are taken.)
    assert frames[True]["dry_days"].mean() > 1.1 * frames[False]["dry_days"].mean()
    normal = model.predict_quantiles(frames[False])["p50"]
    dry = model.predict_quantiles(frames[True])["p50"]
    assert (dry < normal).mean() >= 0.75  # most fields; the jujubes are rainfed
    # The forecast must see the drought's size, not only its sign. Measured: truth -43 %
    # (jujube -33 %, potato -80 %), P50 -32 % (jujube -37 %, potato -15 %); before the
    # water factor read both probes and scaled the forecast past the driest training
    # season, -5 % to -13 %: no training season had a drought, and trees do not
    # extrapolate. The potato's loss is mostly still missed (its drought water factor is
    # within the range of its always-thirsty training seasons).
    truth_drop = 1.0 - truths[True].mean() / truths[False].mean()
    p50_drop = 1.0 - dry.mean() / normal.mean()
    assert p50_drop >= 0.5 * truth_drop, (p50_drop, truth_drop)


def test_a_frost_no_training_season_had_still_lowers_p50_by_its_agronomic_share(data):
    train, held_out = data
    model = YieldQuantileModel(
        feature_columns=(*FEATURES, "stress_factor"), max_iter=30, calibration="split"
    )
    model.fit(train.assign(stress_factor=1.0), train["yield_t_ha"])
    calm = model.predict_quantiles(held_out.assign(stress_factor=1.0))
    frosted = model.predict_quantiles(held_out.assign(stress_factor=0.6))
    # The trees never saw a factor below 1: all of the drop is the scale's.
    assert np.allclose(frosted["p50"], 0.6 * calm["p50"])
    assert (frosted["p10"] <= frosted["p50"]).all()


def _two_crops(seasons: range, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Garlic steady (2 % noise) and maize erratic (25 %), 150 fields each per season."""
    rows, yields = [], []
    for year in seasons:
        for crop, noise in (("garlic", 0.02), ("maize", 0.25)):
            for _ in range(150):
                x = float(rng.uniform(0.0, 1.0))
                rows.append({"crop": crop, "soil": "loam", "region": "r", "year": year, "x": x})
                ratio = 0.5 + 0.3 * x + noise * float(rng.standard_normal())
                yields.append(max(ratio, 0.01) * CROPS[crop].potential_yield_t_ha)
    return pd.DataFrame(rows), np.array(yields)


def test_each_crop_is_calibrated_on_its_own_residuals():
    rng = np.random.default_rng(5)
    X, y = _two_crops(range(2015, 2021), rng)
    test_X, test_y = _two_crops(range(2021, 2023), rng)
    model = YieldQuantileModel(feature_columns=["x"], max_iter=60).fit(X, y)
    quantiles = model.predict_quantiles(test_X)
    width = (quantiles["p90"] - quantiles["p10"]) / test_X["crop"].map(
        {c: CROPS[c].potential_yield_t_ha for c in ("garlic", "maize")}
    )
    assert set(model.crop_corrections_) == {"garlic", "maize"}
    for crop in ("garlic", "maize"):
        mine = (test_X["crop"] == crop).to_numpy()
        coverage = interval_coverage(test_y[mine], quantiles["p10"][mine], quantiles["p90"][mine])
        assert 0.74 <= coverage <= 0.86, (crop, coverage)  # pooled: garlic 88 %
    garlic = (test_X["crop"] == "garlic").to_numpy()
    assert width[garlic].mean() < 0.3 * width[~garlic].mean()


def test_a_crop_with_too_few_calibration_rows_takes_the_pooled_shifts():
    rng = np.random.default_rng(6)
    X, y = _two_crops(range(2015, 2019), rng)
    model = YieldQuantileModel(feature_columns=["x"], max_iter=30, min_calibration_rows=601)
    model.fit(X, y)
    assert model.crop_corrections_ == {}
    np.testing.assert_array_equal(model._corrections(X[:3]), np.tile(model.corrections_, (3, 1)))


# -- intervals with few seasons ------------------------------------------------------------


def _garlic_two_seasons(rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Two garlic seasons, a good one (~90 % of potential) and a drought (~25 %), 60 fields
    each: leave-one-season-out residuals are the whole gap between them."""
    rows, yields = [], []
    for year, level in ((2024, 0.9), (2025, 0.25)):
        for _ in range(60):
            x = float(rng.uniform(0.0, 1.0))
            rows.append({"crop": "garlic", "soil": "loam", "region": "r", "year": year, "x": x})
            ratio = min(1.0, level + 0.05 * x + 0.02 * float(rng.standard_normal()))
            yields.append(ratio * CROPS["garlic"].potential_yield_t_ha)
    return pd.DataFrame(rows), np.array(yields)


def test_two_training_seasons_cannot_give_a_p90_above_the_crops_potential():
    X, y = _garlic_two_seasons(np.random.default_rng(7))
    model = YieldQuantileModel(feature_columns=["x"], max_iter=30, min_calibration_rows=20)
    model.fit(X, y)
    potential = CROPS["garlic"].potential_yield_t_ha
    # Unclamped, the conformal P90 of a good-season field is far above the potential.
    raw = model._raw_quantiles((model.preprocessor_, model.regressors_), X)
    unclamped_p90 = (raw + model._corrections(X))[:, -1].max() * potential
    assert unclamped_p90 > 1.3 * potential
    quantiles = model.predict_quantiles(X)
    assert quantiles["p90"].max() <= potential + 1e-9
    assert (quantiles["p10"] <= quantiles["p50"]).all()
    assert (quantiles["p50"] <= quantiles["p90"]).all()
    # Heat and frost taken so far lower the ceiling by their share.
    frosted = model.predict_quantiles(X.assign(stress_factor=0.5))
    assert frosted["p90"].max() <= 0.5 * potential + 1e-9


def test_the_ceiling_leaves_room_for_the_best_yield_a_field_reached_in_training():
    X, y = _garlic_two_seasons(np.random.default_rng(8))
    y[0] = 1.2 * CROPS["garlic"].potential_yield_t_ha  # one field beat the catalog
    model = YieldQuantileModel(feature_columns=["x"], max_iter=30).fit(X, y)
    assert model.ceiling_ratio_ == pytest.approx(1.2)
    best = 1.2 * CROPS["garlic"].potential_yield_t_ha
    np.testing.assert_allclose(model.ceiling_t_ha(X[:2]), best)


def test_a_model_of_few_seasons_says_its_interval_is_not_to_be_trusted():
    X, y = _garlic_two_seasons(np.random.default_rng(9))
    two = YieldQuantileModel(feature_columns=["x"], max_iter=10).fit(X, y)
    trust = two.interval_trust(X[:3].assign(crop=["garlic", "garlic", "maize"]))
    assert list(trust["interval_trust"]) == ["few_seasons", "few_seasons", "few_seasons"]
    assert list(trust["training_seasons"]) == [2, 2, 0]  # maize: never seen
    four = pd.concat([X, X.assign(year=X["year"] + 2)], ignore_index=True)
    model = YieldQuantileModel(feature_columns=["x"], max_iter=10).fit(four, np.tile(y, 2))
    trusted = model.interval_trust(X[:1])
    assert (trusted["interval_trust"].item(), trusted["training_seasons"].item()) == ("ok", 4)
