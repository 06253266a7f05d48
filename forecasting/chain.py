"""The forecast chain as of a date: store + registry → forecasts, balance, recommendations.

One pass: the seasons in the registry and the telemetry in the store give
features as of the date; a yield model trained on the seasons harvested
before it gives P10/P50/P90 yields and per-field drivers; degree-day
climatology gives harvest windows and a weekly supply curve; observed
platform demand gives a weekly demand forecast; the two make the balance,
and each projected surplus a ranked campaign recommendation. Nothing after
``as_of`` is read: seasons count as history only once harvested before it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from agrimatch.agronomy import CROPS
from agrimatch.registry.repository import find_fields, list_seasons
from agrimatch.store import TelemetryStore
from forecasting.campaign_uplift import estimate_uplifts
from forecasting.campaigns import CampaignRecommendation
from forecasting.chain_data import (
    BASIS_SOWN_PER_PLAN,
    PLAN_COLUMNS,
    ChainData,
    history_key,
    load_chain_data,
    plans_frame,
    seasons_frame,
    seasons_to_forecast,
    split_seasons,
)
from forecasting.chain_demand import fitted_demand_forecaster
from forecasting.demand_data import weekly
from forecasting.demand_model import DemandForecaster
from forecasting.drivers import field_drivers
from forecasting.economics import past_yield_quantiles
from forecasting.errors import ChainError
from forecasting.features import FEATURE_COLUMNS, field_features, recorded_history
from forecasting.forecast_records import stored_field_forecasts
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.harvest import gdd_climatology, harvest_windows
from forecasting.interval_calibration import calibrate_intervals, stored_residuals
from forecasting.metrics import quantile_metrics
from forecasting.model_store import ModelStoreError, list_models, load_model, save_model
from forecasting.planting import PlantingConstraints, PlantingPlan, Risk
from forecasting.recommend import (
    DEFAULT_PLANTING_RISK,
    Market,
    Outlook,
    PlantingSettings,
    outlook,
)
from forecasting.yield_model import YieldQuantileModel

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
"""Told the name of each stage of a long computation as it starts."""


class ForecastEngine(Protocol):
    """Where the chain's partitionable work runs: the per-field forecasts and the demand
    forecast. None in :class:`ChainOptions` is this process; a cluster engine
    (:class:`forecasting.distributed.DaskForecastEngine`) must return exactly what the
    in-process functions return for the same input."""

    @property
    def reads_telemetry(self) -> bool:
        """Whether the engine's workers read the daily telemetry from the store themselves
        (:attr:`ChainData.daily_in_store`), so the caller need not load it."""
        ...

    def field_forecasts(
        self,
        data: ChainData,
        fields: pd.DataFrame,
        history: pd.DataFrame,
        model: YieldQuantileModel,
        as_of: date,
    ) -> pd.DataFrame:
        """What :func:`field_forecasts` returns for these arguments."""
        ...

    def demand_forecast(
        self,
        model: DemandForecaster,
        history_weekly: pd.DataFrame,
        origin_week: date,
        horizon_weeks: int,
        campaigns: pd.DataFrame,
    ) -> pd.DataFrame:
        """What ``model.forecast(history_weekly, origin_week, horizon_weeks, campaigns)``
        returns."""
        ...


@dataclass(frozen=True, slots=True)
class ChainOptions:
    horizon_weeks: int = 26
    history_days: int = 4 * 365  # telemetry and demand read back this far
    training_leads_days: tuple[int, ...] = (90, 60, 30)  # snapshots before each harvest peak
    min_training_seasons: int = 2
    planting_constraints: PlantingConstraints = field(default_factory=PlantingConstraints)
    planting_risk: Risk = DEFAULT_PLANTING_RISK
    # None: in this process. The models are fitted here either way, once per run.
    engine: ForecastEngine | None = None


@dataclass(slots=True)
class ChainResult:
    """What one forecast run found as of a date: per-field forecasts, weekly supply, the
    demand forecast, the balance and the recommendations, and the market they were made in."""

    as_of: date
    model_version: str
    forecasts: pd.DataFrame  # one row per field-season in the ground or planned
    supply: pd.DataFrame
    demand: pd.DataFrame
    balance: pd.DataFrame
    campaigns: list[CampaignRecommendation]
    planting: PlantingPlan | None  # None when the planting LP had no solution (see metrics)
    market: Market
    metrics: dict[str, float] = field(default_factory=dict)
    planting_error: str | None = None

    def outlook(self) -> Outlook:
        """The run's supply, balance and recommendations as a what-if baseline."""
        return Outlook(
            self.forecasts,
            self.supply,
            self.balance,
            self.campaigns,
            self.planting,
            self.planting_error,
        )


def training_set(
    daily: pd.DataFrame, history: pd.DataFrame, leads_days: tuple[int, ...]
) -> tuple[pd.DataFrame, pd.Series]:
    """Features of past seasons as of ``lead`` days before each harvest peak, and their yields."""
    past = recorded_history(daily, history)
    parts = []
    for lead in leads_days:
        snap = history.assign(
            snapshot=history["harvest_peak"].map(lambda d, lead=lead: d - timedelta(days=lead))
        )
        snap = snap[snap["snapshot"] > snap["planted_on"]]
        for snapshot, group in snap.groupby("snapshot"):
            features = field_features(
                daily, group[list(FIELD_SEASON_COLUMNS)], snapshot, history=past
            )
            features["yield_t_ha"] = group["yield_t_ha"].to_numpy()
            parts.append(features)
    if not parts:
        return pd.DataFrame(), pd.Series(dtype=float)
    frame = pd.concat(parts, ignore_index=True)
    return frame.drop(columns=["yield_t_ha"]), frame["yield_t_ha"].astype(float)


@dataclass(frozen=True, slots=True, eq=False)
class TrainedYieldModel:
    """A fitted yield model, its stored version and what it learned from."""

    model: YieldQuantileModel
    version: str  # "unsaved" when not persisted
    training_key: str  # chain_data.history_key of its training seasons
    metrics: dict[str, float]


def train_yield_model(
    data: ChainData,
    as_of: date,
    options: ChainOptions | None = None,
    model_dir: Path | None = None,
) -> TrainedYieldModel:
    """Fit the yield model on every season harvested before ``as_of``; save it if asked."""
    options = options or ChainOptions()
    data = data.until(as_of)
    history, _ = split_seasons(data.seasons, as_of)
    _require_history(history, as_of, options)
    X, y = training_set(data.daily, history, options.training_leads_days)
    if X.empty:
        raise ChainError(f"as of {as_of} no harvested season has telemetry to learn from")
    model = YieldQuantileModel(feature_columns=FEATURE_COLUMNS).fit(X, y)
    metrics = quantile_metrics(y.to_numpy(), model.predict_quantiles(X))
    metrics["training_rows"] = float(len(X))
    key = history_key(history)
    version = "unsaved"
    if model_dir is not None:
        version = save_model(model, model_dir, metrics=metrics, training_key=key).version
    return TrainedYieldModel(model, version, key, metrics)


def current_yield_model(
    data: ChainData, as_of: date, model_dir: Path, options: ChainOptions | None = None
) -> TrainedYieldModel:
    """The stored model trained on exactly the seasons harvested before ``as_of``, or a new one.

    The weekly retrain stores a model; the daily forecast loads it. A stored
    model that learned other seasons is not used: one that knows fewer is
    stale, one that knows more would leak the future into a past ``as_of``.
    """
    stored = stored_yield_model(data.seasons, as_of, model_dir)
    return stored or train_yield_model(data, as_of, options, model_dir)


def stored_yield_model(
    seasons: pd.DataFrame, as_of: date, model_dir: Path
) -> TrainedYieldModel | None:
    """The stored model trained on exactly the seasons harvested before ``as_of``
    (``seasons``: :func:`seasons_frame`); None when there is none usable."""
    history, _ = split_seasons(seasons, as_of)
    key = history_key(history)
    for manifest in reversed(list_models(model_dir, "yield")):
        if manifest.training_key != key:
            continue
        try:
            model, loaded = load_model(model_dir, manifest.version)
        except ModelStoreError as exc:  # e.g. another scikit-learn: retrain instead
            log.warning("stored model %s not usable (%s); retraining", manifest.version, exc)
            return None
        return TrainedYieldModel(model, loaded.version, key, dict(loaded.metrics))
    return None


def run_chain(
    store: TelemetryStore,
    session: Session,
    as_of: date,
    *,
    model_dir: Path | None = None,
    options: ChainOptions | None = None,
    progress: Progress | None = None,
) -> ChainResult:
    """Load what the chain reads, then forecast, balance and recommend as of ``as_of``.

    With ``model_dir`` the yield model is the stored one trained on the
    seasons known on ``as_of`` (trained and stored if there is none);
    without, one is trained for this run. Persists nothing else. Fails
    before reading any telemetry when the registry alone shows the chain
    cannot run (:func:`check_forecastable`).
    """
    options = options or ChainOptions()
    report = progress or no_progress
    seasons = seasons_frame(list_seasons(session))
    check_forecastable(seasons, as_of, options, plans_frame(find_fields(session)))
    first = as_of - timedelta(days=options.history_days)
    stored = None
    if model_dir is not None and options.engine is not None and options.engine.reads_telemetry:
        # The engine's workers read their regions' telemetry from the store; this
        # process needs it only to train, and the weekly retrain has stored the model.
        stored = stored_yield_model(seasons, as_of, model_dir)
    report("loading telemetry and demand")
    data = load_chain_data(store, session, first, as_of, daily=stored is None)
    report("yield model")
    if stored is not None:
        trained = stored
    elif model_dir is not None:
        trained = current_yield_model(data, as_of, model_dir, options)
    else:
        trained = train_yield_model(data, as_of, options)
    # The forecasts stored for seasons harvested since calibrate today's intervals.
    calibration_set = stored_field_forecasts(session, as_of)
    return forecast_as_of(data, as_of, trained, options, progress, stored_forecasts=calibration_set)


def check_forecastable(
    seasons: pd.DataFrame,
    as_of: date,
    options: ChainOptions,
    plans: pd.DataFrame | None = None,
) -> None:
    """Raise :class:`ChainError` naming the fix when the registry's seasons (``seasons_frame``)
    and fields' plans (``plans_frame``) cannot give a forecast as of ``as_of``: no field
    with a season in the ground or planned (:func:`seasons_to_forecast`), or too little
    history."""
    history, _ = split_seasons(seasons, as_of)
    if plans is None:
        plans = pd.DataFrame(columns=list(PLAN_COLUMNS))
    _require_fields(seasons_to_forecast(seasons, plans, as_of), as_of)
    _require_history(history, as_of, options)


def _require_fields(fields: pd.DataFrame, as_of: date) -> None:
    if fields.empty:
        raise ChainError(
            f"no field-season is in progress or planned on {as_of}: import fields with their "
            "crop and planting date (agrimatch import fields), or pick an --as-of date within "
            "the seasons the registry records"
        )


def _require_history(history: pd.DataFrame, as_of: date, options: ChainOptions) -> None:
    seasons = history["year"].nunique()
    if seasons < options.min_training_seasons:
        raise ChainError(
            f"as of {as_of} the registry has {seasons} harvested season(s) with truth; the "
            f"yield model needs {options.min_training_seasons}: import past harvests "
            "(agrimatch import harvests)"
        )


def no_progress(stage: str) -> None:
    """A progress callback that says nothing."""


def forecast_as_of(
    data: ChainData,
    as_of: date,
    trained: TrainedYieldModel,
    options: ChainOptions | None = None,
    progress: Progress | None = None,
    *,
    stored_forecasts: pd.DataFrame | None = None,
) -> ChainResult:
    """Forecast, balance and recommend as of ``as_of`` from loaded data. Pure.

    ``progress`` is told each stage as it starts. ``stored_forecasts``
    (:func:`~forecasting.forecast_records.stored_field_forecasts`) recalibrate the
    yield intervals where there are enough of them
    (:func:`~forecasting.interval_calibration.calibrate_intervals`)."""
    options = options or ChainOptions()
    data = data.until(as_of)
    history, _ = split_seasons(data.seasons, as_of)
    fields = seasons_to_forecast(data.seasons, data.plans, as_of)
    _require_fields(fields, as_of)
    report = progress or no_progress
    report("forecasting fields")
    if options.engine is None:
        forecasts = field_forecasts(data, fields, history, trained.model, as_of)
    else:
        forecasts = options.engine.field_forecasts(data, fields, history, trained.model, as_of)
    residuals = stored_residuals(
        pd.DataFrame() if stored_forecasts is None else stored_forecasts, history
    )
    # Rows not from the model rest on past yields (their basis says so).
    from_model = (
        (forecasts["basis"] == BASIS_TELEMETRY).to_numpy() if "basis" in forecasts else None
    )
    forecasts = calibrate_intervals(forecasts, trained.model, residuals, history, as_of, from_model)
    report("forecasting demand")
    market = chain_market(data, as_of, forecasts, options)
    report("balance and recommendations")
    result = outlook(forecasts, market)
    metrics = {
        "fields_forecast": float(len(forecasts)),
        "fields_forecast_from_telemetry": float((forecasts["basis"] == BASIS_TELEMETRY).sum()),
        "fields_not_sown": float((forecasts["basis"] == BASIS_NOT_SOWN).sum()),
        "fields_sown_by_plan": float((forecasts["basis"] == BASIS_SOWN_PRIOR).sum()),
        "training_rows": trained.metrics.get("training_rows", float("nan")),
        "training_seasons": float(history["year"].nunique()),
        "in_sample_wape_p50": float(trained.metrics.get("wape_p50", float("nan"))),
        "campaigns_recommended": float(len(result.campaigns)),
        "surplus_weeks": float((result.balance["p_surplus"] > 0.5).sum())
        if len(result.balance)
        else 0.0,
    }
    if result.planting is not None:
        summary = result.planting.summary
        metrics["planting_margin_change_cny"] = summary.get(
            "expected_margin_cny_after", 0.0
        ) - summary.get("expected_margin_cny_before", 0.0)
    return ChainResult(
        as_of=as_of,
        model_version=trained.version,
        forecasts=forecasts,
        supply=result.supply,
        demand=market.demand,
        balance=result.balance,
        campaigns=result.campaigns,
        planting=result.planting,
        market=market,
        metrics=metrics,
        planting_error=result.planting_error,
    )


def chain_market(
    data: ChainData, as_of: date, forecasts: pd.DataFrame, options: ChainOptions
) -> Market:
    """The market the chain recommends in as of ``as_of``: the shipped demand forecaster's
    (:mod:`forecasting.chain_demand`) forecast from the last whole week before it, long
    enough for ``forecasts``' harvests to sell or spoil, with the observed prices, the
    platforms and the campaign history."""
    known = data.until(as_of)
    demand_weekly = weekly(known.demand_daily)
    if demand_weekly.empty:
        raise ChainError(f"no platform demand recorded before {as_of}")
    origin = as_of - timedelta(days=as_of.weekday() + 7)  # the last whole week before as_of
    horizon_weeks = demand_horizon_weeks(forecasts, origin, options.horizon_weeks)
    demand_model = fitted_demand_forecaster(demand_weekly, known.campaigns, origin, horizon_weeks)
    if options.engine is None:
        demand = demand_model.forecast(
            demand_weekly, origin, horizon_weeks, campaigns=known.campaigns
        )
    else:
        demand = options.engine.demand_forecast(
            demand_model, demand_weekly, origin, horizon_weeks, known.campaigns
        )
    return Market(
        as_of=as_of,
        demand=demand,
        observed_weekly=demand_weekly,
        platforms=known.platforms,
        uplifts=estimate_uplifts(known.campaigns),
        planting=PlantingSettings(options.planting_constraints, options.planting_risk),
    )


# What a field's yield forecast rests on (the forecasts' "basis" column).
BASIS_TELEMETRY = "yield model on the season's telemetry so far"
BASIS_SOWN_PRIOR = (
    "sown by the field's plan, no telemetry yet: the crop's past yields here, widened"
)
BASIS_NOT_SOWN = "not sown yet: the crop's past yields here, widened"


def field_forecasts(
    data: ChainData,
    fields: pd.DataFrame,
    history: pd.DataFrame,
    model: YieldQuantileModel,
    as_of: date,
    *,
    with_drivers: bool = True,
) -> pd.DataFrame:
    """Per field-season: features as of ``as_of``, yield quantiles, drivers, harvest window,
    and the ``basis`` the yield rests on.

    ``data`` is as known on ``as_of`` (:meth:`ChainData.until`); ``fields``
    has FIELD_SEASON_COLUMNS (and optionally ``basis`` from
    :func:`~forecasting.chain_data.seasons_to_forecast`). A field sown by
    ``as_of`` gets the model's quantiles from its features. One still to be
    sown has no telemetry to read, nor has one sown only by its plan with no
    telemetry since (the garlic of a season the registry does not record yet):
    they get their crop's prior in the region (:func:`prior_yield_quantiles`,
    no drivers; left out when the region has no past season of the crop) and a
    harvest window projected from the planting date by the climatology. The
    result is what :func:`weekly_supply` takes.
    """
    daily = data.daily
    planted = fields["planted_on"].map(lambda d: d <= as_of).to_numpy(dtype=bool)
    by_plan = (
        (fields["basis"] == BASIS_SOWN_PER_PLAN).to_numpy(dtype=bool)
        if "basis" in fields
        else np.zeros(len(fields), dtype=bool)
    )
    unobserved = planted & by_plan & ~_observed_since_planting(daily, fields)
    sown = fields[planted & ~unobserved]
    prior = fields[~planted | unobserved]
    features = field_features(
        daily, sown[list(FIELD_SEASON_COLUMNS)], as_of, history=recorded_history(daily, history)
    )
    forecasts = features.assign(basis=BASIS_TELEMETRY)
    if len(features):
        quantiles = model.predict_quantiles(features)
        for name in ("p10", "p50", "p90"):
            forecasts[f"yield_t_ha_{name}"] = quantiles[name].to_numpy()
    if len(prior):
        climatology = prior[list(FIELD_SEASON_COLUMNS)].merge(
            prior_yield_quantiles(history), on=["crop", "region"], how="inner"
        )
        climatology["basis"] = [
            BASIS_NOT_SOWN if d > as_of else BASIS_SOWN_PRIOR for d in climatology["planted_on"]
        ]
        forecasts = pd.concat(
            [forecasts, climatology.assign(as_of=as_of)], ignore_index=True
        ).reindex(columns=forecasts.columns.union(climatology.columns, sort=False))
    if with_drivers:
        # Nothing sown, nothing to attribute (and no rows for the model to predict).
        drivers = field_drivers(model, features) if len(features) else pd.DataFrame()
        forecasts["drivers"] = _drivers_by_field(drivers, forecasts)
    # A farm known only by its fields' plans has no season to name its region.
    places = pd.concat([data.seasons[["farm", "region"]], fields[["farm", "region"]]])
    regions = places.drop_duplicates("farm").set_index("farm")["region"]
    daily_regions = daily.assign(region=daily["farm"].map(regions))
    climatologies = {
        (crop, region): gdd_climatology(daily_regions[daily_regions["region"] == region], crop)
        for crop, region in forecasts[["crop", "region"]].drop_duplicates().itertuples(index=False)
    }
    return harvest_windows(forecasts, climatologies)


def _observed_since_planting(daily: pd.DataFrame, fields: pd.DataFrame) -> np.ndarray:
    """Per row of ``fields``: whether ``daily`` holds a day of its field since planting."""
    if daily.empty or fields.empty:
        return np.zeros(len(fields), dtype=bool)
    last_day = daily.groupby(["farm", "field"])["day"].max().to_dict()
    return np.array(
        [
            (farm, fld) in last_day and last_day[(farm, fld)] >= planted
            for farm, fld, planted in zip(
                fields["farm"], fields["field"], fields["planted_on"], strict=True
            )
        ],
        dtype=bool,
    )


def prior_yield_quantiles(history: pd.DataFrame) -> pd.DataFrame:
    """Yield P10/P50/P90 per crop and region for a season with nothing observed yet.

    The quantiles of the crop's recorded yields in the region
    (:func:`~forecasting.economics.past_yield_quantiles`), their spread about
    the median widened by ``sqrt(1 + 1/n)`` for ``n`` recorded seasons (years):
    a next season is a new draw, and a few seasons give its distribution only
    roughly — the normal prediction interval's correction. P10 stays at or
    above zero, and P90 at or below the crop's potential or the best yield
    recorded in the region, whichever is higher.
    """
    quantiles = past_yield_quantiles(history)
    if quantiles.empty:
        return quantiles
    past = history.groupby(["crop", "region"])
    seen = pd.concat(
        [past["year"].nunique().rename("seasons"), past["yield_t_ha"].max().rename("best")],
        axis=1,
    )
    quantiles = quantiles.merge(seen.reset_index(), on=["crop", "region"])
    widen = np.sqrt(1.0 + 1.0 / quantiles.pop("seasons").to_numpy(dtype=float))
    p10, p50, p90 = (
        quantiles[f"yield_t_ha_{q}"].to_numpy(dtype=float) for q in ("p10", "p50", "p90")
    )
    potential = np.array([CROPS[c].potential_yield_t_ha for c in quantiles["crop"]])
    ceiling = np.maximum(potential, quantiles.pop("best").to_numpy(dtype=float))
    quantiles["yield_t_ha_p10"] = np.maximum(p50 - (p50 - p10) * widen, 0.0)
    quantiles["yield_t_ha_p90"] = np.minimum(p50 + (p90 - p50) * widen, ceiling)
    return quantiles


def demand_horizon_weeks(forecasts: pd.DataFrame, origin: date, minimum_weeks: int) -> int:
    """Weeks of demand to forecast: until the last harvest's produce would spoil.

    A glut of a crop that keeps for months (cured garlic) only shows value at
    risk once the stock outlives its shelf life, so the balance must reach that
    far; the demand model goes to 52 weeks at most.
    """
    if forecasts.empty:
        return minimum_weeks
    last_harvest = max(forecasts["harvest_p90"])
    shelf_days = max(CROPS[crop].shelf_life_days for crop in set(forecasts["crop"]))
    needed = -(-((last_harvest - origin).days + shelf_days) // 7) + 1
    return int(min(52, max(minimum_weeks, needed)))


def _drivers_by_field(drivers: pd.DataFrame, forecasts: pd.DataFrame) -> list[str]:
    keyed: dict[tuple[Any, ...], list[list[Any]]] = {}
    for row in drivers.itertuples(index=False):
        key = (row.farm, row.field, row.year)
        keyed.setdefault(key, []).append([str(row.feature), round(float(row.effect_t_ha), 3)])
    return [
        json.dumps(keyed.get((f, g, y), []))
        for f, g, y in zip(forecasts["farm"], forecasts["field"], forecasts["year"], strict=True)
    ]
