"""A forecast run's results in the registry: written by the forecast job, read by everyone.

:func:`save_results` stores what one run of the chain found (per-field
forecasts, weekly supply, per-platform demand, the balance, campaign and
planting recommendations) under its ``job_runs`` row; :func:`read_results`
reads a run back as :class:`ForecastResults`, the public result types that the
CLI prints and the API serves. :func:`find_run` picks the run: the newest
successful forecast, or the newest of an as-of date.

Campaigns read back in date order (when to act), each with what it alone is
expected to save; planting per crop and region with each farm's change and
its reasons.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import fields as fields_of
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from agrimatch.registry.models import (
    Farm,
    FieldForecast,
    JobRun,
    Recommendation,
    WeeklyBalance,
    WeeklyDemand,
    WeeklySupply,
)
from forecasting.campaigns import CampaignRecommendation
from forecasting.chain import ChainResult
from forecasting.frames import BALANCE_COLUMNS, DEMAND_COLUMNS, SUPPLY_COLUMNS
from forecasting.jobs import FORECAST
from forecasting.planting import PlantingPlan

# --- public result types ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Driver:
    """What moved a field's yield forecast: a feature and its effect on the P50 (t/ha)."""

    feature: str
    effect_t_ha: float


@dataclass(frozen=True, slots=True)
class FieldForecastResult:
    """A field-season's yield quantiles (t/ha), harvest window and drivers.

    ``interval_trust`` is ``"ok"`` or ``"few_seasons"``: the P10-P90 rests on
    ``training_seasons`` harvested seasons of the crop, fewer than the model needs to
    calibrate it well. ``calibration`` says what calibrated it: ``"cross_validated"``
    (the model's own held-out seasons), ``"stored_residuals"`` (the forecasts stored
    for a harvested season at the same lead) or ``"past_yields"`` (not sown yet: the
    crop's past yields in the region). All three None: stored before they were recorded.
    """

    farm: str
    field: str
    region: str
    crop: str
    year: int
    yield_t_ha_p10: float
    yield_t_ha_p50: float
    yield_t_ha_p90: float
    harvest_p10: date | None
    harvest_p50: date | None
    harvest_p90: date | None
    drivers: tuple[Driver, ...] = ()
    interval_trust: str | None = None
    training_seasons: int | None = None
    calibration: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignResult:
    """A group-buying campaign to organise: where, when, how much, and why.

    ``value_saved_cny`` is what this campaign alone is expected to save (the
    produce it keeps from spoiling, at the crop's price, plus the storage it
    avoids); ``surplus_value_at_risk_cny`` the value of the whole surplus
    episode it belongs to, shared by that episode's campaigns.
    """

    rank: int  # by value at risk, as recommended
    platform: str
    platform_name: str
    crop: str
    region: str
    start: date
    end: date
    target_kg: float
    expected_absorbed_kg: float
    value_saved_cny: float
    surplus_value_at_risk_cny: float
    surplus_at_risk_kg: float  # of the whole episode, as the value
    spoils_from: date | None  # the week the episode's stock starts to spoil unsold
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FarmPlantingChange:
    """One farm's area of a crop this season and next, with why it moves (or not)."""

    farm: str
    current_ha: float
    recommended_ha: float
    binding: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def change_ha(self) -> float:
        """Recommended minus current area (negative: plant less)."""
        return self.recommended_ha - self.current_ha


@dataclass(frozen=True, slots=True)
class PlantingResult:
    """Next season's area of a crop in a region: the change, the prices and margins it
    expects before and after, and each farm's part. ``observed_price_cny_per_kg``: the
    price the platforms observed, which the model's price curve is anchored on (None when
    the crop was priced from the catalog, or the run was stored before it was recorded)."""

    crop: str
    region: str
    current_ha: float
    recommended_ha: float
    change_ha: float
    expected_price_cny_per_kg_before: float
    expected_price_cny_per_kg_after: float
    expected_margin_cny_before: float
    expected_margin_cny_after: float
    risk: str
    farms: tuple[FarmPlantingChange, ...] = ()
    observed_price_cny_per_kg: float | None = None


@dataclass(frozen=True, slots=True)
class WeeklySupplyResult:
    """Projected supply of a crop in a region in the week starting ``week`` (a Monday), kg."""

    crop: str
    region: str
    week: date
    supply_kg_p10: float
    supply_kg_p50: float
    supply_kg_p90: float


@dataclass(frozen=True, slots=True)
class WeeklyDemandResult:
    """One platform's forecast demand for a crop in a region in a week, kg."""

    platform: str
    crop: str
    region: str
    week: date
    demand_kg_p10: float
    demand_kg_p50: float
    demand_kg_p90: float


@dataclass(frozen=True, slots=True)
class WeeklyBalanceResult:
    """Supply against all platforms' demand for a crop in a region in a week, kg."""

    crop: str
    region: str
    week: date
    supply_kg_p10: float
    supply_kg_p50: float
    supply_kg_p90: float
    demand_kg_p10: float
    demand_kg_p50: float
    demand_kg_p90: float
    surplus_kg_p50: float  # negative: shortfall
    p_surplus: float
    p_shortfall: float


@dataclass(frozen=True, slots=True)
class ForecastResults:
    """Everything one forecast run stored, as of its date, by its model version."""

    run_id: int
    as_of: date
    model_version: str
    finished_at: datetime | None
    fields: tuple[FieldForecastResult, ...]
    campaigns: tuple[CampaignResult, ...]  # by start date
    planting: tuple[PlantingResult, ...]  # largest change first
    supply: tuple[WeeklySupplyResult, ...]
    demand: tuple[WeeklyDemandResult, ...]
    balance: tuple[WeeklyBalanceResult, ...]
    planting_error: str | None = None
    metrics: dict[str, float | str | None] = field(default_factory=dict)


# --- write ----------------------------------------------------------------------------

_RESULT_TABLES = (FieldForecast, Recommendation, WeeklySupply, WeeklyDemand, WeeklyBalance)


def save_results(session: Session, run_id: int, result: ChainResult) -> None:
    """Store a chain's forecasts, weekly supply, demand, balance and recommendations
    under job run ``run_id``.

    Results are those of an as-of date and a model version: a rerun for both
    (a manual run after the scheduled one, a retried job) replaces what an
    earlier run saved for them.
    """
    for table in _RESULT_TABLES:
        session.execute(
            delete(table).where(
                table.as_of == result.as_of, table.model_version == result.model_version
            )
        )
    stamp = {"run_id": run_id, "as_of": result.as_of, "model_version": result.model_version}
    session.add_all(
        FieldForecast(
            **stamp,
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
            **_interval_columns(row),
        )
        for row in result.forecasts.itertuples(index=False)
    )
    for table, frame, columns in (
        (WeeklySupply, result.supply, SUPPLY_COLUMNS),
        (WeeklyDemand, result.demand, DEMAND_COLUMNS),
        (WeeklyBalance, result.balance, BALANCE_COLUMNS),
    ):
        session.add_all(table(**stamp, **row) for row in _table_rows(frame, columns))
    for rank, campaign in enumerate(result.campaigns, start=1):
        session.add(
            Recommendation(
                **stamp,
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
                    **stamp,
                    kind="planting",
                    rank=rank,
                    crop=crop,
                    region_id=region,
                    body_json=json.dumps(body, default=str),
                )
            )
    session.flush()


def _interval_columns(row: Any) -> dict[str, Any]:
    """A forecast row's trust and calibration columns (forecasting.interval_calibration);
    None where the chain did not give them."""

    def number(name: str) -> float | None:
        value = getattr(row, name, None)
        return None if value is None or pd.isna(value) else float(value)

    seasons = number("training_seasons")
    return {
        "interval_trust": getattr(row, "interval_trust", None),
        "training_seasons": None if seasons is None else int(seasons),
        "calibration": getattr(row, "calibration", None),
        "yield_t_ha_p10_model": number("yield_t_ha_p10_model"),
        "yield_t_ha_p90_model": number("yield_t_ha_p90_model"),
    }


# Frames name ids as the domain does; the tables as foreign keys.
_ID_COLUMNS = {"region": "region_id", "platform": "platform_id"}


def _table_rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """``frame``'s ``columns`` as table rows: ids renamed, weeks as dates, numbers as floats."""
    rows = []
    for record in frame[list(columns)].to_dict("records"):
        row: dict[str, Any] = {}
        for key, value in record.items():
            if key == "week":
                value = pd.Timestamp(value).date()
            elif key not in _ID_COLUMNS and key != "crop":
                value = float(value)
            row[_ID_COLUMNS.get(str(key), str(key))] = value
        rows.append(row)
    return rows


def _campaign_body(campaign: CampaignRecommendation) -> dict[str, Any]:
    return {
        "platform": campaign.platform,
        "platform_name": campaign.platform_name,
        "start": campaign.start.isoformat(),
        "end": campaign.end.isoformat(),
        "target_kg": round(campaign.target_kg),
        "expected_absorbed_kg": round(campaign.expected_absorbed_kg),
        "value_saved_cny": round(campaign.value_saved_cny),
        "value_at_risk_cny": round(campaign.value_at_risk_cny),
        "surplus_at_risk_kg": round(campaign.surplus_at_risk_kg),
        "spoils_from": campaign.spoils_from.isoformat(),
        "reasons": list(campaign.reasons),
    }


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
            "observed_price_cny_per_kg": _rounded_or_none(
                getattr(row, "observed_price_cny_per_kg", None), 3
            ),
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


def _rounded_or_none(value: Any, digits: int) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), digits)


# --- read -----------------------------------------------------------------------------


def find_run(session: Session, as_of: date | None = None) -> JobRun | None:
    """The newest successful forecast run (of ``as_of`` when given) that stored results."""
    query = select(JobRun).where(JobRun.job == FORECAST, JobRun.status == "ok")
    if as_of is not None:
        query = query.where(JobRun.as_of == as_of)
    # A rerun replaces an earlier run's results of the same date and model; the
    # earlier run's row stays, so only a run that still owns forecasts counts.
    owns = select(FieldForecast.id).where(FieldForecast.run_id == JobRun.id).exists()
    query = query.where(owns).order_by(JobRun.as_of.desc(), JobRun.id.desc()).limit(1)
    return session.scalars(query).first()


def forecast_dates(session: Session, limit: int = 50) -> list[date]:
    """The as-of dates with stored forecasts, newest first."""
    query = select(FieldForecast.as_of).distinct().order_by(FieldForecast.as_of.desc()).limit(limit)
    return list(session.scalars(query))


def read_results(session: Session, run: JobRun) -> ForecastResults:
    """Everything ``run`` stored, as public result types."""
    regions = {farm: region for farm, region in session.execute(select(Farm.id, Farm.region_id))}
    fields = tuple(
        FieldForecastResult(
            farm=f.farm_id,
            field=f.field_id,
            region=regions.get(f.farm_id, ""),
            crop=f.crop,
            year=f.year,
            yield_t_ha_p10=f.yield_t_ha_p10,
            yield_t_ha_p50=f.yield_t_ha_p50,
            yield_t_ha_p90=f.yield_t_ha_p90,
            harvest_p10=f.harvest_p10,
            harvest_p50=f.harvest_p50,
            harvest_p90=f.harvest_p90,
            drivers=tuple(Driver(str(n), float(e)) for n, e in json.loads(f.drivers_json or "[]")),
            interval_trust=f.interval_trust,
            training_seasons=f.training_seasons,
            calibration=f.calibration,
        )
        for f in session.scalars(
            select(FieldForecast)
            .where(FieldForecast.run_id == run.id)
            .order_by(FieldForecast.farm_id, FieldForecast.field_id, FieldForecast.year)
        )
    )
    recommendations = list(
        session.scalars(
            select(Recommendation)
            .where(Recommendation.run_id == run.id)
            .order_by(Recommendation.kind, Recommendation.rank)
        )
    )
    campaigns = sorted(
        (_campaign(r) for r in recommendations if r.kind == "campaign"),
        key=lambda c: (c.start, c.rank),
    )
    planting = tuple(_planting(r) for r in recommendations if r.kind == "planting")
    metrics = json.loads(run.metrics_json or "{}")
    error = metrics.pop("planting_error", None)
    if run.as_of is None:  # forecast runs always record theirs
        raise ValueError(f"run {run.id} has no as-of date: not a forecast run")
    return ForecastResults(
        run_id=run.id,
        as_of=run.as_of,
        model_version=run.model_version or "",
        finished_at=run.ended_at,
        fields=fields,
        campaigns=tuple(campaigns),
        planting=planting,
        supply=_weekly(session, WeeklySupply, run.id, WeeklySupplyResult),
        demand=_weekly(session, WeeklyDemand, run.id, WeeklyDemandResult),
        balance=_weekly(session, WeeklyBalance, run.id, WeeklyBalanceResult),
        planting_error=None if error is None else str(error),
        metrics=metrics,
    )


def _campaign(row: Recommendation) -> CampaignResult:
    body = json.loads(row.body_json)
    return CampaignResult(
        rank=row.rank,
        platform=body["platform"],
        platform_name=body.get("platform_name", body["platform"]),
        crop=row.crop,
        region=row.region_id,
        start=date.fromisoformat(body["start"]),
        end=date.fromisoformat(body["end"]),
        target_kg=float(body["target_kg"]),
        expected_absorbed_kg=float(body["expected_absorbed_kg"]),
        # Runs stored before this field existed: unknown, not the episode's value.
        value_saved_cny=float(body.get("value_saved_cny", float("nan"))),
        surplus_value_at_risk_cny=float(body["value_at_risk_cny"]),
        surplus_at_risk_kg=float(body.get("surplus_at_risk_kg", float("nan"))),
        spoils_from=date.fromisoformat(body["spoils_from"]) if "spoils_from" in body else None,
        reasons=tuple(body.get("reasons", ())),
    )


def _planting(row: Recommendation) -> PlantingResult:
    body = json.loads(row.body_json)
    return PlantingResult(
        crop=row.crop,
        region=row.region_id,
        current_ha=float(body["current_ha"]),
        recommended_ha=float(body["recommended_ha"]),
        change_ha=float(body["change_ha"]),
        expected_price_cny_per_kg_before=float(body["expected_price_cny_per_kg_before"]),
        expected_price_cny_per_kg_after=float(body["expected_price_cny_per_kg_after"]),
        expected_margin_cny_before=float(body["expected_margin_cny_before"]),
        expected_margin_cny_after=float(body["expected_margin_cny_after"]),
        risk=str(body.get("risk", "")),
        observed_price_cny_per_kg=_rounded_or_none(body.get("observed_price_cny_per_kg"), 3),
        farms=tuple(
            FarmPlantingChange(
                farm=f["farm"],
                current_ha=float(f["current_ha"]),
                recommended_ha=float(f["recommended_ha"]),
                binding=tuple(f.get("binding", ())),
                reasons=tuple(f.get("reasons", ())),
            )
            for f in body.get("farms", ())
        ),
    )


def _weekly(session: Session, table: Any, run_id: int, result_type: Any) -> tuple[Any, ...]:
    """A run's rows of a weekly table as ``result_type``, by (platform,) crop, region, week."""
    names = [f.name for f in fields_of(result_type)]
    order = [getattr(table, _ID_COLUMNS.get(n, n)) for n in names if n in _KEYS]
    rows = session.scalars(select(table).where(table.run_id == run_id).order_by(*order))
    return tuple(
        result_type(**{n: getattr(row, _ID_COLUMNS.get(n, n)) for n in names}) for row in rows
    )


_KEYS = ("platform", "crop", "region", "week")
