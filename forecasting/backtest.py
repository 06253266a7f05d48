"""Backtest over simulated history, rolling origin. Pure: works on loaded :class:`ChainData`.

**Yield.** For every season year after the first ``min_training_seasons``,
the yield model and the two baselines (regional mean, last season) are
trained on the seasons harvested before the season's earliest evaluation
date, then each field is forecast as of 90, 60 and 30 days before its own
harvest peak (features from telemetry before that date only). Scores per
lead, pooled over years: P50 WAPE of the model and the baselines, the
model's pinball loss and P10–P90 coverage. The forecasts of the years already
evaluated stand for the ones a running system would have stored: where enough
of them were harvested before a later year's origin, they recalibrate its
intervals as the chain's stored forecasts would
(:func:`~forecasting.interval_calibration.calibrate_intervals`; the lead here is
the true one); ``coverage_p10_p90_model`` is the model's own calibration alone.

**Demand.** Origins every ``demand_origin_step_weeks`` weeks through the
evaluation years; from each, the weekly demand model (fitted on the weeks up
to the origin, knowing the campaigns started by then), the seasonal-naive
baseline and the statistical peers (:mod:`forecasting.demand_peers`, Nixtla
statsforecast, fitted on the same weeks) forecast ``demand_horizon_weeks``
weeks; WAPE of the P50 and P10–P90 coverage over every platform, crop, region
and week, pooled, with each forecaster's fit-and-forecast time.

**Campaigns.** For each evaluation year, crop and region the platforms
sell, the whole chain runs as of ``campaign_planning_days`` before the
median harvest peak. Its recommended campaigns are replayed
(:func:`forecasting.campaigns.replay`) in the simulated market: the true
harvest (recorded yields × area, spread over each field's true harvest
window) against the platforms' observed daily demand with the historical
campaigns' effect taken out; compared with no campaign and with the same
campaigns started naively on the first day of the harvest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

from agrimatch.agronomy import CROPS
from forecasting.baselines import LastSeasonBaseline, RegionalMeanBaseline
from forecasting.campaign_uplift import estimate_uplifts
from forecasting.campaigns import (
    CampaignRecommendation,
    ReplayResult,
    daily_campaign_multiplier,
    replay,
)
from forecasting.chain import (
    ChainError,
    ChainOptions,
    ChainResult,
    TrainedYieldModel,
    forecast_as_of,
    train_yield_model,
    training_set,
)
from forecasting.chain_data import ChainData, history_key, split_seasons
from forecasting.demand_baselines import SeasonalNaiveForecaster
from forecasting.demand_combination import CombinedDemandForecaster
from forecasting.demand_data import SERIES_KEYS, weekly
from forecasting.demand_model import DemandForecaster
from forecasting.demand_peers import DEFAULT_PEERS, StatisticalPeer
from forecasting.features import FEATURE_COLUMNS, field_features, recorded_history
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.interval_calibration import (
    STORED_RESIDUALS,
    calibrate_intervals,
    stored_residuals,
)
from forecasting.metrics import quantile_metrics, wape
from forecasting.yield_model import YieldQuantileModel


@dataclass(frozen=True, slots=True)
class BacktestOptions:
    leads_days: tuple[int, ...] = (90, 60, 30)
    min_training_seasons: int = 2
    demand_horizon_weeks: int = 26
    demand_origin_step_weeks: int = 8
    demand_peers: tuple[str, ...] = DEFAULT_PEERS  # forecasting.demand_peers.PEER_METHODS
    campaign_planning_days: int = 60  # the chain runs this long before the harvest peak
    chain: ChainOptions = field(default_factory=ChainOptions)


@dataclass(slots=True)
class CampaignReplay:
    """One crop and region in one year: what the chain recommended and how it played out."""

    year: int
    crop: str
    region: str
    as_of: date
    harvest_peak: date
    campaigns: list[CampaignRecommendation]
    outcome: ReplayResult

    @property
    def first_campaign_start(self) -> date | None:
        return min((c.start for c in self.campaigns), default=None)


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """One of the issue's targets, the measured value and whether it is met."""

    name: str
    measured: float
    target: str
    met: bool


@dataclass(slots=True)
class BacktestReport:
    evaluation_years: list[int]
    yield_predictions: pd.DataFrame  # one row per field, year and lead
    yield_by_lead: pd.DataFrame  # scores per lead, pooled over years
    demand_predictions: pd.DataFrame  # one row per series, origin and week
    demand_scores: dict[str, float]
    replays: list[CampaignReplay]
    # One row per forecaster (ours, seasonal naive, each peer): WAPE, coverage, seconds.
    demand_by_forecaster: pd.DataFrame = field(default_factory=pd.DataFrame)
    last_chain: ChainResult | None = None  # the last year's chain runs, merged, for the plot
    actual_weekly: pd.DataFrame | None = None  # crop, region, week, supply_kg, demand_kg

    @property
    def yield_by_crop(self) -> pd.DataFrame:
        """The yield scores per crop and lead (``crop`` first), pooled over years."""
        parts = [
            yield_scores(group).assign(crop=crop)
            for crop, group in self.yield_predictions.groupby("crop", sort=True)
        ]
        frame = pd.concat(parts, ignore_index=True)
        return frame[["crop", *(c for c in frame.columns if c != "crop")]]

    @property
    def campaign_scores(self) -> dict[str, float]:
        return campaign_scores(self.replays)

    def targets(self) -> list[TargetCheck]:
        """The targets: yield WAPE at 60 and 30 days, against the regional mean, coverage;
        demand against seasonal naive; campaigns clear 80 % of the surplus and beat naive."""
        by_lead = self.yield_by_lead.set_index("lead_days")
        checks = []
        for lead, limit in ((60, 0.12), (30, 0.08)):
            if lead in by_lead.index:
                value = float(by_lead.loc[lead, "wape_p50"])
                name = f"yield P50 WAPE {lead} d"
                checks.append(TargetCheck(name, value, f"<= {limit:.0%}", value <= limit))
        for lead in by_lead.index:
            better = float(by_lead.loc[lead, "better_than_regional_mean"])
            checks.append(
                TargetCheck(
                    f"yield vs regional mean {lead} d", better, ">= 30% better", better >= 0.30
                )
            )
            coverage = float(by_lead.loc[lead, "coverage_p10_p90"])
            checks.append(
                TargetCheck(
                    f"yield P10-P90 coverage {lead} d",
                    coverage,
                    "75-85%",
                    0.75 <= coverage <= 0.85,
                )
            )
        demand = self.demand_scores["better_than_seasonal_naive"]
        checks.append(
            TargetCheck("demand vs seasonal naive", demand, ">= 20% better", demand >= 0.20)
        )
        scores = self.campaign_scores
        if scores["surplus_kg"] > 0:
            cleared = scores["cleared_share_recommended"]
            checks.append(
                TargetCheck("campaigns: surplus cleared", cleared, ">= 80%", cleared >= 0.80)
            )
            margin = scores["lost_kg_naive"] - scores["lost_kg_recommended"]
            beats = cleared > scores["cleared_share_naive"] or (
                cleared >= scores["cleared_share_naive"] and margin > 0
            )
            checks.append(
                TargetCheck(
                    "campaigns: kg lost, naive minus recommended",
                    margin,
                    "beat naive (clear more, or as much and lose less)",
                    beats,
                )
            )
        return checks


def run_backtest(data: ChainData, options: BacktestOptions | None = None) -> BacktestReport:
    """Yield, demand and campaign backtests over every season ``data`` holds truth for."""
    options = options or BacktestOptions()
    years = _truth_years(data.seasons)
    evaluation = years[options.min_training_seasons :]
    if not evaluation:
        raise ChainError(
            f"the backtest needs more than {options.min_training_seasons} seasons with truth, "
            f"the registry has {len(years)} ({years})"
        )
    predictions = yield_predictions(data, evaluation, options)
    demand, seconds = demand_backtest(data, evaluation[0], options)
    replays, last_chain = campaign_replays(data, evaluation, options)
    return BacktestReport(
        evaluation_years=evaluation,
        yield_predictions=predictions,
        yield_by_lead=yield_scores(predictions),
        demand_predictions=demand,
        demand_scores=demand_scores(demand),
        replays=replays,
        demand_by_forecaster=demand_forecaster_scores(demand, seconds),
        last_chain=last_chain,
        actual_weekly=_actual_weekly(data, evaluation[-1]),
    )


# --- yield ---------------------------------------------------------------------------


def yield_predictions(data: ChainData, years: list[int], options: BacktestOptions) -> pd.DataFrame:
    """Model and baseline forecasts of every field of ``years`` at each lead before its peak."""
    rows: list[pd.DataFrame] = []
    leads = options.leads_days
    for year in years:
        fields = _with_truth(data.seasons)
        fields = fields[fields["year"] == year]
        snapshots = {lead: fields["harvest_peak"].map(lambda d, k=lead: d - timedelta(days=k))
                     for lead in leads}  # fmt: skip
        origin = min(min(s) for s in snapshots.values())
        history, _ = split_seasons(data.seasons, origin)
        if history["year"].nunique() < options.min_training_seasons:
            continue
        known = data.until(origin)
        X, y = training_set(known.daily, history, options.chain.training_leads_days)
        model = YieldQuantileModel(feature_columns=FEATURE_COLUMNS).fit(X, y)
        regional = RegionalMeanBaseline().fit(X, y)
        last = LastSeasonBaseline().fit(X, y)
        past = recorded_history(known.daily, history)
        residuals = stored_residuals(_as_stored(rows), history)
        for lead, snapshot in snapshots.items():
            at = fields.assign(snapshot=snapshot)
            at = at[at["snapshot"] > at["planted_on"]]
            for day, group in at.groupby("snapshot"):
                features = field_features(
                    data.daily, group[list(FIELD_SEASON_COLUMNS)], day, history=past
                )
                quantiles = model.predict_quantiles(features)
                calibrated = calibrate_intervals(
                    features.assign(
                        **{f"yield_t_ha_{q}": quantiles[q].to_numpy() for q in quantiles},
                        harvest_p50=day + timedelta(days=lead),
                    ),
                    model,
                    residuals,
                    history,
                    day,
                )
                rows.append(
                    group[["farm", "field", "region", "crop", "area_ha", "year"]].assign(
                        lead_days=lead,
                        as_of=day,
                        truth=group["yield_t_ha"].astype(float).to_numpy(),
                        p10=calibrated["yield_t_ha_p10"].to_numpy(),
                        p50=quantiles["p50"].to_numpy(),
                        p90=calibrated["yield_t_ha_p90"].to_numpy(),
                        p10_model=quantiles["p10"].to_numpy(),
                        p90_model=quantiles["p90"].to_numpy(),
                        calibration=calibrated["calibration"].to_numpy(),
                        regional_mean=regional.predict(features),
                        last_season=last.predict(features),
                    )
                )
    if not rows:
        raise ChainError("no season could be backtested: too few seasons before each")
    return pd.concat(rows, ignore_index=True)


def _as_stored(rows: list[pd.DataFrame]) -> pd.DataFrame:
    """Earlier years' backtest forecasts as the registry's stored forecasts
    (:data:`~forecasting.interval_calibration.STORED_COLUMNS`)."""
    if not rows:
        return pd.DataFrame()
    earlier = pd.concat(rows, ignore_index=True)
    return earlier.rename(
        columns={
            "p10": "yield_t_ha_p10",
            "p90": "yield_t_ha_p90",
            "p10_model": "yield_t_ha_p10_model",
            "p90_model": "yield_t_ha_p90_model",
        }
    )


def yield_scores(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per lead: P50 WAPE of the model and baselines, pinball loss, P10–P90 coverage."""
    rows = []
    for lead, group in predictions.groupby("lead_days", sort=False):
        truth = group["truth"].to_numpy()
        metrics = quantile_metrics(truth, group[["p10", "p50", "p90"]])
        regional = wape(truth, group["regional_mean"])
        rows.append(
            {
                "lead_days": int(lead),
                "fields": len(group),
                "wape_p50": metrics["wape_p50"],
                "wape_regional_mean": regional,
                "wape_last_season": wape(truth, group["last_season"]),
                "better_than_regional_mean": 1.0 - metrics["wape_p50"] / regional,
                "pinball_mean": metrics["pinball_mean"],
                "coverage_p10_p90": metrics["coverage_p10_p90"],
                "coverage_p10_p90_model": _coverage(truth, group, "p10_model", "p90_model"),
                "stored_calibrated_share": _share(group, "calibration", STORED_RESIDUALS),
            }
        )
    return pd.DataFrame(rows).sort_values("lead_days", ascending=False, ignore_index=True)


def _coverage(truth: np.ndarray, group: pd.DataFrame, low: str, high: str) -> float:
    if low not in group or high not in group:
        return float("nan")
    return float(np.mean((truth >= group[low].to_numpy()) & (truth <= group[high].to_numpy())))


def _share(group: pd.DataFrame, column: str, value: str) -> float:
    return float((group[column] == value).mean()) if column in group else float("nan")


# --- demand --------------------------------------------------------------------------


def demand_predictions(data: ChainData, first_year: int, options: BacktestOptions) -> pd.DataFrame:
    """Model, seasonal-naive and peer forecasts from rolling origins, joined with what happened."""
    return demand_backtest(data, first_year, options)[0]


def demand_backtest(
    data: ChainData, first_year: int, options: BacktestOptions
) -> tuple[pd.DataFrame, dict[str, float]]:
    """:func:`demand_predictions` and each forecaster's seconds (fit and forecast, all origins).

    Columns: the model's ``demand_kg_p10/p50/p90``, ``seasonal_naive`` and per peer
    ``{peer}_p10/_p50/_p90``, ``actual_kg``, ``origin``. A week is scored only where
    every forecaster forecast it, so all are compared on the same weeks.
    """
    observed = weekly(data.demand_daily)
    if observed.empty:
        raise ChainError("no platform demand to backtest")
    horizon = options.demand_horizon_weeks
    last_week = max(observed["week"])
    keys = [*SERIES_KEYS, "week"]
    seconds: dict[str, float] = {"model": 0.0, "seasonal_naive": 0.0}
    seconds |= {peer: 0.0 for peer in options.demand_peers}
    parts = []
    for origin in _origins(first_year, last_week, horizon, options.demand_origin_step_weeks):
        known = observed[observed["week"] <= origin]
        campaigns = data.campaigns[data.campaigns["start_on"] <= origin]
        model = CombinedDemandForecaster(max_horizon_weeks=horizon)
        forecasters: dict[str, DemandForecaster] = {
            "model": model,
            "seasonal_naive": SeasonalNaiveForecaster(horizon),
        }
        for peer in options.demand_peers:
            forecasters[peer] = StatisticalPeer(peer, max_horizon_weeks=horizon)
        joined: pd.DataFrame | None = None
        for name, forecaster in forecasters.items():
            started = time.perf_counter()
            forecast = forecaster.fit(known, campaigns=campaigns).forecast(
                known, origin, horizon, campaigns=campaigns
            )
            seconds[name] += time.perf_counter() - started
            columns = _demand_columns(name)
            part = forecast.rename(columns=columns)[[*keys, *columns.values()]]
            joined = part if joined is None else joined.merge(part, on=keys)
            if forecaster is model:
                # The boosted trees alone, as fitted inside the combination: what it adds.
                trees = model.model_.forecast(known, origin, horizon, campaigns=campaigns)
                columns = _demand_columns(TREES)
                part = trees.rename(columns=columns)[[*keys, *columns.values()]]
                joined = joined.merge(part, on=keys)
        assert joined is not None
        actual = observed[[*keys, "quantity_kg"]].rename(columns={"quantity_kg": "actual_kg"})
        parts.append(joined.merge(actual, on=keys).assign(origin=origin))
    if not parts:
        raise ChainError(f"no demand origin in {first_year} leaves {horizon} weeks to check")
    return pd.concat(parts, ignore_index=True), seconds


TREES = "gbm_alone"  # our quantile trees without MSTL or calibration (no time of their own)


def _demand_columns(name: str) -> dict[str, str]:
    """How a forecaster's quantile columns are named in the backtest's predictions."""
    if name == "model":
        return {c: c for c in ("demand_kg_p10", "demand_kg_p50", "demand_kg_p90")}
    if name == "seasonal_naive":  # P50 only: the yardstick
        return {"demand_kg_p50": "seasonal_naive"}
    return {f"demand_kg_p{q}": f"{name}_p{q}" for q in (10, 50, 90)}


def demand_forecaster_scores(predictions: pd.DataFrame, seconds: dict[str, float]) -> pd.DataFrame:
    """Per forecaster: pooled P50 WAPE, P10–P90 coverage (NaN without an interval), seconds,
    and how much better the model's WAPE is than it (``model_better``, 0.1 = 10 % lower)."""
    actual = predictions["actual_kg"].to_numpy()
    model_wape = wape(actual, predictions["demand_kg_p50"])
    rows = []
    names = list(seconds)
    if f"{TREES}_p50" in predictions:
        names.insert(1, TREES)
    for name in names:
        spent = seconds.get(name, float("nan"))
        columns = list(_demand_columns(name).values())
        p50 = columns[1] if len(columns) == 3 else columns[0]
        score = wape(actual, predictions[p50])
        coverage = float("nan")
        if len(columns) == 3:
            low, high = predictions[columns[0]], predictions[columns[2]]
            coverage = float(((actual >= low) & (actual <= high)).mean())
        rows.append(
            {
                "forecaster": name,
                "wape_p50": score,
                "coverage_p10_p90": coverage,
                "seconds": spent,
                "model_better": 1.0 - model_wape / score,
            }
        )
    return pd.DataFrame(rows)


def demand_scores(predictions: pd.DataFrame) -> dict[str, float]:
    """Pooled WAPE of the model's P50 and of seasonal naive, and the model's improvement."""
    actual = predictions["actual_kg"].to_numpy()
    model = wape(actual, predictions["demand_kg_p50"])
    naive = wape(actual, predictions["seasonal_naive"])
    inside = (predictions["actual_kg"] >= predictions["demand_kg_p10"]) & (
        predictions["actual_kg"] <= predictions["demand_kg_p90"]
    )
    return {
        "origins": float(predictions["origin"].nunique()),
        "weeks": float(len(predictions)),
        "wape_p50": model,
        "wape_seasonal_naive": naive,
        "better_than_seasonal_naive": 1.0 - model / naive,
        "coverage_p10_p90": float(inside.mean()),
    }


def _origins(first_year: int, last_week: date, horizon: int, step: int) -> Iterator[date]:
    first = date(first_year, 1, 1)
    origin = first + timedelta(days=(7 - first.weekday()) % 7)
    while origin + timedelta(weeks=horizon) <= last_week:
        yield origin
        origin += timedelta(weeks=step)


# --- campaigns -----------------------------------------------------------------------


def campaign_replays(
    data: ChainData, years: list[int], options: BacktestOptions
) -> tuple[list[CampaignReplay], ChainResult | None]:
    """The chain's campaigns for each year's sold crops, replayed in the simulated market."""
    seasons = _with_truth(data.seasons)
    sold = set(map(tuple, data.demand_daily[["crop", "region"]].drop_duplicates().to_numpy()))
    models: dict[str, TrainedYieldModel] = {}
    replays: list[CampaignReplay] = []
    last_runs: list[tuple[str, str, ChainResult]] = []
    for year in years:
        this_year = seasons[seasons["year"] == year]
        for (crop, region), fields in this_year.groupby(["crop", "region"], sort=True):
            if (crop, region) not in sold:
                continue
            peak = _median_date(fields["harvest_peak"])
            as_of = peak - timedelta(days=options.campaign_planning_days)
            key = history_key(split_seasons(data.seasons, as_of)[0])
            if key not in models:
                models[key] = train_yield_model(data, as_of, options.chain)
            result = forecast_as_of(data, as_of, models[key], options.chain)
            mine = [c for c in result.campaigns if (c.crop, c.region) == (crop, region)]
            outcome = _replay(data, fields, str(crop), str(region), mine)
            replays.append(CampaignReplay(year, str(crop), str(region), as_of, peak, mine, outcome))
            if year == years[-1]:
                last_runs.append((str(crop), str(region), result))
    return replays, _merged(last_runs)


def campaign_scores(replays: list[CampaignReplay]) -> dict[str, float]:
    """Pooled over the replays: the surplus, the share of it cleared and the kilograms lost."""
    surplus = sum(r.outcome.surplus_kg for r in replays)
    scores = {"replays": float(len(replays)), "surplus_kg": surplus}
    for name in ("recommended", "none", "naive", "ceiling"):
        outcomes = [getattr(r.outcome, name) or r.outcome.none for r in replays]
        spoiled = sum(o.spoiled_kg for o in outcomes)
        scores[f"cleared_share_{name}"] = (surplus - spoiled) / surplus if surplus else 0.0
        scores[f"lost_kg_{name}"] = sum(o.lost_kg for o in outcomes)
        scores[f"sold_kg_{name}"] = sum(o.sold_kg for o in outcomes)
    return scores


def _replay(
    data: ChainData,
    fields: pd.DataFrame,
    crop: str,
    region: str,
    campaigns: list[CampaignRecommendation],
) -> ReplayResult:
    spec = CROPS[crop]
    supply = _true_daily_supply(fields)
    first = supply.index.min().date()
    last = supply.index.max().date() + timedelta(days=int(spec.shelf_life_days))
    demand = baseline_daily_demand(data, crop, region, first, last)
    uplifts = estimate_uplifts(data.campaigns[data.campaigns["start_on"] < first])
    ceiling = {p: uplifts.for_campaign(p, crop).uplift for p in demand}
    return replay(
        supply,
        demand,
        campaigns,
        spec.shelf_life_days,
        spec.postharvest_loss_per_week,
        ceiling_uplifts=ceiling,
    )


def baseline_daily_demand(
    data: ChainData, crop: str, region: str, first: date, last: date
) -> dict[str, pd.Series]:
    """Each platform's observed daily demand with the historical campaigns' effect divided out."""
    frame = data.demand_daily
    frame = frame[(frame["crop"] == crop) & (frame["region"] == region)]
    frame = frame[(frame["day"] >= first) & (frame["day"] <= last)]
    out = {}
    for platform, rows in frame.groupby("platform"):
        series = pd.Series(rows["quantity_kg"].to_numpy(float), index=pd.to_datetime(rows["day"]))
        ran = data.campaigns[
            (data.campaigns["platform"] == platform)
            & (data.campaigns["crop"] == crop)
            & (data.campaigns["region"] == region)
        ]
        plan = [
            (str(platform), c.start_on, c.end_on, float(c.uplift), float(c.hangover))
            for c in ran.itertuples(index=False)
        ]
        if plan:
            start = series.index.min().date()
            offsets = (series.index - series.index.min()).days.to_numpy()
            multiplier = daily_campaign_multiplier(plan, start, int(offsets.max()) + 1)
            series = series / multiplier[offsets]
        out[str(platform)] = series
    return out


def _true_daily_supply(fields: pd.DataFrame) -> pd.Series:
    """The recorded harvest (t/ha × ha) per day: triangular over each field's true window."""
    total: dict[date, float] = {}
    for row in fields.itertuples(index=False):
        kg = float(row.yield_t_ha) * float(row.area_ha) * 1000.0
        start, peak, end = row.harvest_start, row.harvest_peak, row.harvest_end
        days = [start + timedelta(days=k) for k in range((end - start).days + 1)]
        up = max((peak - start).days, 0) + 1
        down = max((end - peak).days, 0) + 1
        weights = np.array(
            [
                (1 + (d - start).days) / up if d <= peak else (1 + (end - d).days) / down
                for d in days
            ]
        )
        for d, share in zip(days, weights / weights.sum(), strict=True):
            total[d] = total.get(d, 0.0) + kg * float(share)
    series = pd.Series(total).sort_index()
    series.index = pd.to_datetime(series.index)
    return series


def _merged(runs: list[tuple[str, str, ChainResult]]) -> ChainResult | None:
    """One chain result holding, per crop and region, the run planned for it."""
    if not runs:
        return None
    base = runs[-1][2]
    balance = pd.concat(
        [r.balance[(r.balance["crop"] == c) & (r.balance["region"] == g)] for c, g, r in runs],
        ignore_index=True,
    )
    campaigns = [x for c, g, r in runs for x in r.campaigns if (x.crop, x.region) == (c, g)]
    return replace(base, balance=balance, campaigns=campaigns, metrics=dict(base.metrics))


def _actual_weekly(data: ChainData, year: int) -> pd.DataFrame:
    """The year's true supply and observed demand per crop, region and week (for the plot)."""
    seasons = _with_truth(data.seasons)
    parts = []
    for (crop, region), fields in seasons[seasons["year"] == year].groupby(["crop", "region"]):
        daily = _true_daily_supply(fields)
        week = daily.index - pd.to_timedelta(daily.index.day_of_week, unit="D")
        kg = daily.groupby(week).sum()
        parts.append(
            pd.DataFrame({"crop": crop, "region": region, "week": kg.index.date, "supply_kg": kg})
        )
    supply = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    demand = (
        weekly(data.demand_daily)
        .groupby(["crop", "region", "week"], as_index=False)["quantity_kg"]
        .sum()
    )
    demand = demand.rename(columns={"quantity_kg": "demand_kg"})
    if supply.empty:
        return demand.assign(supply_kg=np.nan)
    return supply.merge(demand, on=["crop", "region", "week"], how="outer")


# --- helpers -------------------------------------------------------------------------


def _with_truth(seasons: pd.DataFrame) -> pd.DataFrame:
    known = seasons["yield_t_ha"].notna() & seasons["harvest_peak"].notna()
    return seasons[known].reset_index(drop=True)


def _truth_years(seasons: pd.DataFrame) -> list[int]:
    return sorted(int(y) for y in _with_truth(seasons)["year"].unique())


def _median_date(days: pd.Series) -> date:
    ordinals = sorted(d.toordinal() for d in days)
    return date.fromordinal(ordinals[len(ordinals) // 2])
