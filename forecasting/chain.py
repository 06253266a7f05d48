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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from agrimatch.agronomy import CROPS
from agrimatch.registry.models import FieldForecast, Platform, Recommendation, Season
from agrimatch.registry.repository import list_campaigns, list_seasons
from agrimatch.store import TelemetryStore
from forecasting.balance import balance as make_balance
from forecasting.campaign_uplift import estimate_uplifts
from forecasting.campaigns import CampaignRecommendation, recommend_campaigns
from forecasting.demand_data import daily_demand_frame, weekly
from forecasting.demand_model import DemandQuantileModel
from forecasting.drivers import field_drivers
from forecasting.features import FEATURE_COLUMNS, HISTORY_COLUMNS, field_features
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.harvest import gdd_climatology, harvest_windows, weekly_supply
from forecasting.metrics import quantile_metrics
from forecasting.model_store import save_model
from forecasting.telemetry_frames import daily_field_frame
from forecasting.yield_model import YieldQuantileModel

log = logging.getLogger(__name__)
DAY_MS = 86_400_000


class ChainError(RuntimeError):
    """The chain cannot run as of this date (e.g. no harvested season to learn from)."""


@dataclass(frozen=True, slots=True)
class ChainOptions:
    horizon_weeks: int = 26
    history_days: int = 4 * 365  # telemetry and demand read back this far
    training_leads_days: tuple[int, ...] = (90, 60, 30)  # snapshots before each harvest peak
    min_training_seasons: int = 2


@dataclass(slots=True)
class ChainResult:
    as_of: date
    model_version: str
    forecasts: pd.DataFrame  # one row per current field-season
    supply: pd.DataFrame
    demand: pd.DataFrame
    balance: pd.DataFrame
    campaigns: list[CampaignRecommendation]
    metrics: dict[str, float] = field(default_factory=dict)


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def seasons_frame(seasons: list[Season]) -> pd.DataFrame:
    """Registry seasons as FIELD_SEASON_COLUMNS plus their truth (NaN/None when unknown)."""
    rows = [
        {
            "farm": s.farm_id,
            "field": s.field_id,
            "region": s.field.farm.region_id,
            "crop": s.crop,
            "soil": s.field.soil,
            "area_ha": s.area_ha,
            "year": s.year,
            "planted_on": s.planted_on,
            "yield_t_ha": s.yield_t_ha,
            "harvest_peak": s.harvest_peak,
            "harvest_end": s.harvest_end,
        }
        for s in seasons
    ]
    return pd.DataFrame(
        rows, columns=[*FIELD_SEASON_COLUMNS, "yield_t_ha", "harvest_peak", "harvest_end"]
    )


def split_seasons(frame: pd.DataFrame, as_of: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, current): harvested before ``as_of`` with truth; planted by it and not over."""
    known = frame["harvest_end"].notna() & frame["yield_t_ha"].notna()
    harvested = known & frame["harvest_end"].map(lambda d: d is not None and d < as_of)
    history = frame[harvested].reset_index(drop=True)
    planted = frame["planted_on"].map(lambda d: d <= as_of)
    # A season is current when planted and not harvested yet as far as as_of can tell;
    # older unharvested-looking seasons (no truth, planted over a year ago) are stale.
    recent = frame["planted_on"].map(lambda d: (as_of - d).days < 366)
    current = frame[planted & ~harvested & recent].reset_index(drop=True)
    return history, current


def training_set(
    daily: pd.DataFrame, history: pd.DataFrame, leads_days: tuple[int, ...]
) -> tuple[pd.DataFrame, pd.Series]:
    """Features of past seasons as of ``lead`` days before each harvest peak, and their yields."""
    past = history[list(HISTORY_COLUMNS)]
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


def run_chain(
    store: TelemetryStore,
    session: Session,
    as_of: date,
    *,
    model_dir: Path | None = None,
    options: ChainOptions | None = None,
) -> ChainResult:
    """Forecast, balance and recommend as of ``as_of``; persist nothing but the model."""
    options = options or ChainOptions()
    seasons = seasons_frame(list_seasons(session))
    history, current = split_seasons(seasons, as_of)
    if history["year"].nunique() < options.min_training_seasons:
        raise ChainError(
            f"as of {as_of} the registry has {history['year'].nunique()} harvested season(s) "
            f"with truth; the yield model needs {options.min_training_seasons}"
        )
    if current.empty:
        raise ChainError(f"no field-season is in progress on {as_of}")
    start = as_of - timedelta(days=options.history_days)
    daily = daily_field_frame(store, _ms(start), _ms(as_of))
    daily = daily[daily["day"] < as_of]

    X, y = training_set(daily, history, options.training_leads_days)
    model = YieldQuantileModel(feature_columns=FEATURE_COLUMNS).fit(X, y)
    in_sample = quantile_metrics(y.to_numpy(), model.predict_quantiles(X))
    version = "unsaved"
    if model_dir is not None:
        manifest = save_model(model, model_dir, metrics=in_sample)
        version = manifest.version

    now_features = field_features(
        daily, current[list(FIELD_SEASON_COLUMNS)], as_of, history=history[list(HISTORY_COLUMNS)]
    )
    quantiles = model.predict_quantiles(now_features)
    forecasts = now_features.copy()
    for name in ("p10", "p50", "p90"):
        forecasts[f"yield_t_ha_{name}"] = quantiles[name].to_numpy()
    drivers = field_drivers(model, now_features)
    forecasts["drivers"] = _drivers_by_field(drivers, forecasts)

    regions = seasons.drop_duplicates("farm").set_index("farm")["region"]
    daily_regions = daily.assign(region=daily["farm"].map(regions))
    climatologies = {
        (crop, region): gdd_climatology(daily_regions[daily_regions["region"] == region], crop)
        for crop, region in forecasts[["crop", "region"]].drop_duplicates().itertuples(index=False)
    }
    forecasts = harvest_windows(forecasts, climatologies)
    supply = weekly_supply(forecasts, loss_weeks=0.0)

    demand_daily = daily_demand_frame(store, _ms(start), _ms(as_of))
    demand_weekly = weekly(demand_daily)
    campaign_rows = [
        {
            "platform": c.platform_id,
            "crop": c.crop,
            "region": c.region_id,
            "start_on": c.start_on,
            "end_on": c.end_on,
            "uplift": c.uplift,
            "hangover": c.hangover,
            "volume_kg": c.volume_kg,
            "source": c.source,
        }
        for c in list_campaigns(session)
        if c.start_on < as_of
    ]
    campaigns_frame = pd.DataFrame(
        campaign_rows,
        columns=[
            "platform",
            "crop",
            "region",
            "start_on",
            "end_on",
            "uplift",
            "hangover",
            "volume_kg",
            "source",
        ],
    )
    origin = as_of - timedelta(days=as_of.weekday() + 7)  # the last whole week before as_of
    if demand_weekly.empty:
        raise ChainError(f"no platform demand recorded before {as_of}")
    horizon_weeks = demand_horizon_weeks(forecasts, origin, options.horizon_weeks)
    demand_model = DemandQuantileModel(max_horizon_weeks=horizon_weeks)
    demand_model.fit(demand_weekly[demand_weekly["week"] <= origin], campaigns=campaigns_frame)
    demand = demand_model.forecast(demand_weekly, origin, horizon_weeks, campaigns=campaigns_frame)

    # Supply and demand meet per crop and region; the horizon is the demand's.
    horizon_end = origin + timedelta(weeks=horizon_weeks)
    supply_in = supply[(supply["week"] > origin) & (supply["week"] <= horizon_end)]
    sold = set(map(tuple, demand[["crop", "region"]].drop_duplicates().to_numpy()))
    supply_in = supply_in[
        [(c, r) in sold for c, r in zip(supply_in["crop"], supply_in["region"], strict=True)]
    ]
    balance_frame = make_balance(supply_in, demand)
    platforms = list(session.query(Platform).all())
    uplifts = estimate_uplifts(campaigns_frame)
    recommended = recommend_campaigns(
        balance_frame, platforms, uplifts, CROPS, as_of, demand=demand
    )
    metrics = {
        "fields_forecast": float(len(forecasts)),
        "training_rows": float(len(X)),
        "training_seasons": float(history["year"].nunique()),
        "in_sample_wape_p50": float(in_sample.get("wape_p50", float("nan"))),
        "campaigns_recommended": float(len(recommended)),
        "surplus_weeks": float((balance_frame["p_surplus"] > 0.5).sum())
        if len(balance_frame)
        else 0.0,
    }
    return ChainResult(
        as_of, version, forecasts, supply, demand, balance_frame, recommended, metrics
    )


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
    """Store a chain's forecasts and recommendations under job run ``run_id``."""
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
    session.flush()


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
