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
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete
from sqlalchemy.orm import Session

from agrimatch.agronomy import CROPS
from agrimatch.registry.models import FieldForecast, Recommendation
from agrimatch.store import TelemetryStore
from forecasting.balance import balance as make_balance
from forecasting.campaign_uplift import estimate_uplifts
from forecasting.campaigns import CampaignRecommendation, recommend_campaigns
from forecasting.chain_data import (
    ChainData,
    history_key,
    load_chain_data,
    planned_seasons,
    split_seasons,
)
from forecasting.demand_data import weekly
from forecasting.demand_model import DemandQuantileModel
from forecasting.drivers import field_drivers
from forecasting.economics import (
    crop_economics,
    current_plan,
    past_yield_quantiles,
    season_plan,
)
from forecasting.features import FEATURE_COLUMNS, field_features, recorded_history
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.harvest import gdd_climatology, harvest_windows, weekly_supply
from forecasting.jobs import JobCannotRun
from forecasting.metrics import quantile_metrics
from forecasting.model_store import ModelStoreError, list_models, load_model, save_model
from forecasting.planting import (
    PlantingConstraints,
    PlantingInfeasible,
    PlantingPlan,
    Risk,
    recommend_planting,
)
from forecasting.yield_model import YieldQuantileModel

log = logging.getLogger(__name__)


class ChainError(JobCannotRun):
    """The chain cannot run as of this date (e.g. no harvested season to learn from)."""


@dataclass(frozen=True, slots=True)
class ChainOptions:
    horizon_weeks: int = 26
    history_days: int = 4 * 365  # telemetry and demand read back this far
    training_leads_days: tuple[int, ...] = (90, 60, 30)  # snapshots before each harvest peak
    min_training_seasons: int = 2
    planting_constraints: PlantingConstraints = field(default_factory=PlantingConstraints)
    # Risk-aware: the mean margin blended with the mean of the worst tenth of yield years.
    planting_risk: Risk = ("cvar", 0.1, 0.3)


@dataclass(slots=True)
class ChainResult:
    as_of: date
    model_version: str
    forecasts: pd.DataFrame  # one row per current field-season
    supply: pd.DataFrame
    demand: pd.DataFrame
    balance: pd.DataFrame
    campaigns: list[CampaignRecommendation]
    planting: PlantingPlan | None  # None when the planting LP had no solution (see metrics)
    metrics: dict[str, float] = field(default_factory=dict)
    planting_error: str | None = None


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
    if history["year"].nunique() < options.min_training_seasons:
        raise ChainError(
            f"as of {as_of} the registry has {history['year'].nunique()} harvested season(s) "
            f"with truth; the yield model needs {options.min_training_seasons}"
        )
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
    history, _ = split_seasons(data.seasons, as_of)
    key = history_key(history)
    for manifest in reversed(list_models(model_dir, "yield")):
        if manifest.training_key != key:
            continue
        try:
            model, loaded = load_model(model_dir, manifest.version)
        except ModelStoreError as exc:  # e.g. another scikit-learn: retrain instead
            log.warning("stored model %s not usable (%s); retraining", manifest.version, exc)
            break
        return TrainedYieldModel(model, loaded.version, key, dict(loaded.metrics))
    return train_yield_model(data, as_of, options, model_dir)


def run_chain(
    store: TelemetryStore,
    session: Session,
    as_of: date,
    *,
    model_dir: Path | None = None,
    options: ChainOptions | None = None,
) -> ChainResult:
    """Load what the chain reads, then forecast, balance and recommend as of ``as_of``.

    With ``model_dir`` the yield model is the stored one trained on the
    seasons known on ``as_of`` (trained and stored if there is none);
    without, one is trained for this run. Persists nothing else.
    """
    options = options or ChainOptions()
    first = as_of - timedelta(days=options.history_days)
    data = load_chain_data(store, session, first, as_of)
    trained = (
        current_yield_model(data, as_of, model_dir, options)
        if model_dir is not None
        else train_yield_model(data, as_of, options)
    )
    return forecast_as_of(data, as_of, trained, options)


def forecast_as_of(
    data: ChainData,
    as_of: date,
    trained: TrainedYieldModel,
    options: ChainOptions | None = None,
) -> ChainResult:
    """Forecast, balance and recommend as of ``as_of`` from loaded data. Pure."""
    options = options or ChainOptions()
    data = data.until(as_of)
    history, current = split_seasons(data.seasons, as_of)
    if current.empty:
        raise ChainError(f"no field-season is in progress on {as_of}")
    fields = pd.concat([current, planned_seasons(data.seasons, as_of, current)])
    forecasts = field_forecasts(data, fields, history, trained.model, as_of)
    supply = weekly_supply(forecasts, loss_weeks=0.0)

    demand_weekly = weekly(data.demand_daily)
    origin = as_of - timedelta(days=as_of.weekday() + 7)  # the last whole week before as_of
    if demand_weekly.empty:
        raise ChainError(f"no platform demand recorded before {as_of}")
    horizon_weeks = demand_horizon_weeks(forecasts, origin, options.horizon_weeks)
    demand_model = DemandQuantileModel(max_horizon_weeks=horizon_weeks)
    demand_model.fit(demand_weekly[demand_weekly["week"] <= origin], campaigns=data.campaigns)
    demand = demand_model.forecast(demand_weekly, origin, horizon_weeks, campaigns=data.campaigns)

    # Supply and demand meet per crop and region; the horizon is the demand's.
    horizon_end = origin + timedelta(weeks=horizon_weeks)
    supply_in = supply[(supply["week"] > origin) & (supply["week"] <= horizon_end)]
    sold = set(map(tuple, demand[["crop", "region"]].drop_duplicates().to_numpy()))
    supply_in = supply_in[
        [(c, r) in sold for c, r in zip(supply_in["crop"], supply_in["region"], strict=True)]
    ]
    balance_frame = make_balance(supply_in, demand)
    uplifts = estimate_uplifts(data.campaigns)
    recommended = recommend_campaigns(
        balance_frame, data.platforms, uplifts, CROPS, as_of, demand=demand
    )
    plan = season_plan(forecasts, data.seasons, history, as_of)
    planting, planting_error = _plan_planting(plan, demand, demand_weekly, options)
    metrics = {
        "fields_forecast": float(len(forecasts)),
        "training_rows": trained.metrics.get("training_rows", float("nan")),
        "training_seasons": float(history["year"].nunique()),
        "in_sample_wape_p50": float(trained.metrics.get("wape_p50", float("nan"))),
        "campaigns_recommended": float(len(recommended)),
        "surplus_weeks": float((balance_frame["p_surplus"] > 0.5).sum())
        if len(balance_frame)
        else 0.0,
    }
    if planting is not None:
        metrics["planting_margin_change_cny"] = planting.summary.get(
            "expected_margin_cny_after", 0.0
        ) - planting.summary.get("expected_margin_cny_before", 0.0)
    return ChainResult(
        as_of,
        trained.version,
        forecasts,
        supply,
        demand,
        balance_frame,
        recommended,
        planting,
        metrics,
        planting_error,
    )


def _plan_planting(
    fields: pd.DataFrame,
    demand: pd.DataFrame,
    observed_weekly: pd.DataFrame,
    options: ChainOptions,
) -> tuple[PlantingPlan | None, str | None]:
    """Next season's areas from this season's plan, yields and demand; an error, not a crash."""
    economics = crop_economics(fields, demand, observed_weekly, CROPS)
    try:
        plan = recommend_planting(
            current_plan(fields),
            economics,
            options.planting_constraints,
            options.planting_risk,
        )
    except PlantingInfeasible as exc:  # the forecasts stand; the plan says why it is missing
        log.warning("no planting plan: %s", exc)
        return None, str(exc)
    return plan, None


def field_forecasts(
    data: ChainData,
    fields: pd.DataFrame,
    history: pd.DataFrame,
    model: YieldQuantileModel,
    as_of: date,
    *,
    with_drivers: bool = True,
) -> pd.DataFrame:
    """Per field-season: features as of ``as_of``, yield quantiles, drivers, harvest window.

    ``data`` is as known on ``as_of`` (:meth:`ChainData.until`); ``fields``
    has FIELD_SEASON_COLUMNS. A field sown by ``as_of`` gets the model's
    quantiles from its features; one still to be sown has no telemetry to
    read, and gets its crop's past yields in the region
    (:func:`~forecasting.economics.past_yield_quantiles`, no drivers; left
    out when the region has none) and a harvest window projected from its
    planting date. The result is what :func:`weekly_supply` takes.
    """
    daily = data.daily
    sown = fields[fields["planted_on"].map(lambda d: d <= as_of)]
    to_sow = fields[fields["planted_on"].map(lambda d: d > as_of)]
    features = field_features(
        daily, sown[list(FIELD_SEASON_COLUMNS)], as_of, history=recorded_history(daily, history)
    )
    forecasts = features.copy()
    if len(features):
        quantiles = model.predict_quantiles(features)
        for name in ("p10", "p50", "p90"):
            forecasts[f"yield_t_ha_{name}"] = quantiles[name].to_numpy()
    if len(to_sow):
        climatology = to_sow[list(FIELD_SEASON_COLUMNS)].merge(
            past_yield_quantiles(history), on=["crop", "region"], how="inner"
        )
        forecasts = pd.concat(
            [forecasts, climatology.assign(as_of=as_of)], ignore_index=True
        ).reindex(columns=forecasts.columns.union(climatology.columns, sort=False))
    if with_drivers:
        forecasts["drivers"] = _drivers_by_field(field_drivers(model, features), forecasts)
    regions = data.seasons.drop_duplicates("farm").set_index("farm")["region"]
    daily_regions = daily.assign(region=daily["farm"].map(regions))
    climatologies = {
        (crop, region): gdd_climatology(daily_regions[daily_regions["region"] == region], crop)
        for crop, region in forecasts[["crop", "region"]].drop_duplicates().itertuples(index=False)
    }
    return harvest_windows(forecasts, climatologies)


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


def save_results(session: Session, run_id: int, result: ChainResult) -> None:
    """Store a chain's forecasts and recommendations under job run ``run_id``.

    Results are those of an as-of date and a model version: a rerun for both
    (a manual run after the scheduled one, a retried job) replaces what an
    earlier run saved for them, forecasts and recommendations alike.
    """
    for table in (FieldForecast, Recommendation):
        session.execute(
            delete(table).where(
                table.as_of == result.as_of, table.model_version == result.model_version
            )
        )
    for row in result.forecasts.itertuples(index=False):
        session.add(
            FieldForecast(
                run_id=run_id,
                as_of=result.as_of,
                model_version=result.model_version,
                farm_id=row.farm,
                field_id=row.field,
                year=int(row.year),
                crop=row.crop,
                yield_t_ha_p10=float(row.yield_t_ha_p10),
                yield_t_ha_p50=float(row.yield_t_ha_p50),
                yield_t_ha_p90=float(row.yield_t_ha_p90),
                harvest_p10=row.harvest_p10,
                harvest_p50=row.harvest_p50,
                harvest_p90=row.harvest_p90,
                drivers_json=row.drivers,
            )
        )
    for rank, campaign in enumerate(result.campaigns, start=1):
        session.add(
            Recommendation(
                run_id=run_id,
                as_of=result.as_of,
                model_version=result.model_version,
                kind="campaign",
                rank=rank,
                crop=campaign.crop,
                region_id=campaign.region,
                body_json=json.dumps(_campaign_body(campaign), default=str),
            )
        )
    if result.planting is not None:
        for rank, (crop, region, body) in enumerate(_planting_bodies(result.planting), start=1):
            session.add(
                Recommendation(
                    run_id=run_id,
                    as_of=result.as_of,
                    model_version=result.model_version,
                    kind="planting",
                    rank=rank,
                    crop=crop,
                    region_id=region,
                    body_json=json.dumps(body, default=str),
                )
            )
    session.flush()


def _planting_bodies(plan: PlantingPlan) -> list[tuple[str, str, dict[str, Any]]]:
    """Per crop and region: the regional change and each farm's, largest change first."""
    bodies = []
    farms = plan.farms
    for row in plan.regions.itertuples(index=False):
        mine = farms[(farms["region"] == row.region) & (farms["crop"] == row.crop)]
        body = {
            "current_ha": round(float(row.current_ha), 2),
            "recommended_ha": round(float(row.recommended_ha), 2),
            "change_ha": round(float(row.change_ha), 2),
            "expected_price_cny_per_kg_before": round(
                float(row.expected_price_cny_per_kg_before), 3
            ),
            "expected_price_cny_per_kg_after": round(float(row.expected_price_cny_per_kg_after), 3),
            "expected_margin_cny_before": round(float(row.expected_margin_cny_before)),
            "expected_margin_cny_after": round(float(row.expected_margin_cny_after)),
            "risk": plan.risk,
            "farms": [
                {
                    "farm": f.farm,
                    "current_ha": round(float(f.current_ha), 2),
                    "recommended_ha": round(float(f.recommended_ha), 2),
                    "binding": list(f.binding),
                    "reasons": list(f.reasons),
                }
                for f in mine.itertuples(index=False)
            ],
        }
        bodies.append((str(row.crop), str(row.region), body))
    return sorted(bodies, key=lambda b: -abs(b[2]["change_ha"]))


def _campaign_body(campaign: CampaignRecommendation) -> dict[str, Any]:
    return {
        "platform": campaign.platform,
        "start": campaign.start.isoformat(),
        "end": campaign.end.isoformat(),
        "target_kg": round(campaign.target_kg),
        "expected_absorbed_kg": round(campaign.expected_absorbed_kg),
        "value_at_risk_cny": round(campaign.value_at_risk_cny),
        "reasons": list(campaign.reasons),
    }
