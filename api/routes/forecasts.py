"""Forecasts: run one, a field's forecast, and the supply–demand balance by week.

Results are those a forecast run stored (:class:`forecasting.service.ForecastService`),
the newest successful one unless ``as_of`` names its date.
"""

from __future__ import annotations

import logging
from datetime import date

from fastapi import APIRouter

from api.deps import ContextDep, ForecastsDep, ManagerKey
from api.errors import ProblemError
from api.openapi import responses
from api.results import HOW_TO_RUN, china_today, results_or_404
from api.schemas.forecasts import (
    BalanceOut,
    FieldForecastOut,
    FieldForecastPublic,
    ForecastRunIn,
    ForecastRunOut,
    RunStamp,
    WeeklyBalancePublic,
)
from api.scope import field_for_read
from forecasting.errors import ChainError

log = logging.getLogger(__name__)

router = APIRouter(tags=["forecasts"])

STAMP_EXAMPLE = {
    "as_of": "2026-04-15",
    "model_version": "yield-qgbr-garlic+maize+tomato-2025-3f9a2c7e",
    "run_id": 42,
}
FORECAST_EXAMPLE = STAMP_EXAMPLE | {
    "forecast": {
        "farm": "garlic-coop-1",
        "field": "north",
        "region": "zhongmou",
        "crop": "garlic",
        "year": 2026,
        "yield_t_ha_p10": 14.1,
        "yield_t_ha_p50": 16.0,
        "yield_t_ha_p90": 17.6,
        "harvest_p10": "2026-05-19",
        "harvest_p50": "2026-05-24",
        "harvest_p90": "2026-05-30",
        "drivers": [{"feature": "gdd_since_planting", "effect_t_ha": 0.84}],
    }
}
BALANCE_EXAMPLE = STAMP_EXAMPLE | {
    "weeks": [
        {
            "crop": "garlic",
            "region": "zhongmou",
            "week": "2026-05-25",
            "supply_kg_p10": 81000.0,
            "supply_kg_p50": 96000.0,
            "supply_kg_p90": 110000.0,
            "demand_kg_p10": 5200.0,
            "demand_kg_p50": 6300.0,
            "demand_kg_p90": 7600.0,
            "surplus_kg_p50": 89700.0,
            "p_surplus": 1.0,
            "p_shortfall": 0.0,
        }
    ]
}
RUN_EXAMPLE = {
    "run_id": 43,
    "status": "ok",
    "as_of": "2026-04-15",
    "model_version": "yield-qgbr-garlic+maize+tomato-2025-3f9a2c7e",
    "error": None,
}


@router.get(
    "/farms/{farm}/fields/{field}/forecast",
    summary="A field's yield and harvest forecast",
    response_model=FieldForecastOut,
    responses=responses(FORECAST_EXAMPLE, 401, 403, 404),
)
def read_field_forecast(
    farm: str,
    field: str,
    key: ManagerKey,
    context: ContextDep,
    as_of: date | None = None,
) -> FieldForecastOut:
    """The field's forecast in the newest run (or that of ``as_of``): yield quantiles,
    harvest window and what moved it. Its current season; a planned one if none is in the
    ground. 404 when no run has stored results."""
    with context.sessions() as session:
        field_for_read(session, key, farm, field)
    results = results_or_404(context.forecasts, as_of)
    mine = [f for f in results.fields if (f.farm, f.field) == (farm, field)]
    if not mine:
        raise ProblemError(
            404,
            f"forecast run {results.run_id} (as of {results.as_of}) has no forecast for field "
            f"{field!r} of farm {farm!r} (nothing in season on it then); {HOW_TO_RUN}",
            slug="no-forecast",
            title="No forecast yet",
        )
    forecast = FieldForecastPublic.model_validate(min(mine, key=lambda f: f.year))
    return FieldForecastOut(**RunStamp.of(results), forecast=forecast)


@router.get(
    "/balance",
    summary="Supply against demand by crop, region and week",
    response_model=BalanceOut,
    responses=responses(BALANCE_EXAMPLE, 401, 403, 404),
)
def read_balance(
    key: ManagerKey,
    forecasts: ForecastsDep,
    crop: str | None = None,
    region: str | None = None,
    as_of: date | None = None,
) -> BalanceOut:
    """The weeks of the newest run (or that of ``as_of``), supply against all platforms'
    demand (P10, P50, P90 kg), with the chance of a surplus or a shortfall."""
    results = results_or_404(forecasts, as_of)
    weeks = [
        WeeklyBalancePublic.model_validate(w)
        for w in results.balance
        if (crop is None or w.crop == crop) and (region is None or w.region == region)
    ]
    return BalanceOut(**RunStamp.of(results), weeks=weeks)


@router.post(
    "/forecasts/run",
    summary="Run the forecast now (as of a date), and store its results",
    response_model=ForecastRunOut,
    responses=responses(RUN_EXAMPLE, 401, 403, 409),
)
def run_forecast(body: ForecastRunIn, key: ManagerKey, context: ContextDep) -> ForecastRunOut:
    """The scheduled forecast job, run now and recorded as a job run: every field in season
    forecast, the balance, campaign and planting recommendations, all stored with the run
    (a rerun for the same date and model replaces them). Answers when it has ended, with
    ``status`` ``ok`` or ``failed`` and why. When the registry alone shows it cannot run
    (no field in season, too few harvested seasons to learn from): 409, nothing run."""
    as_of = body.as_of or china_today(context.clock)
    try:
        context.forecasts.check_forecast(as_of)
    except ChainError as exc:
        raise ProblemError(409, str(exc), slug="cannot-forecast", title="Cannot forecast") from None
    log.info("forecast as of %s run by %s", as_of, key.label)
    done = context.forecasts.run_forecast(as_of)
    run = done.run
    return ForecastRunOut(
        run_id=run.id,
        status=run.status,
        as_of=run.as_of or as_of,
        model_version=run.model_version,
        error=run.error,
    )
