"""``POST /v1/whatif``: the outlook of a changed plan or weather, beside the current one."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from fastapi import APIRouter

from api.deps import ContextDep, ManagerKey
from api.errors import ProblemError
from api.openapi import responses
from api.results import china_today
from api.schemas.whatif import WhatIfCampaign, WhatIfComparison, WhatIfIn, WhatIfOut
from forecasting.errors import ChainError, InvalidRequest
from forecasting.service import ForecastService
from forecasting.whatif import PlanChange

log = logging.getLogger(__name__)

router = APIRouter(tags=["forecasts"])

WHATIF_EXAMPLE = {
    "as_of": "2026-04-15",
    "comparison": [
        {
            "crop": "garlic",
            "region": "zhongmou",
            "peak_surplus_kg_p50_before": 89700.0,
            "peak_surplus_kg_p50_after": 61200.0,
            "surplus_weeks_before": 4,
            "surplus_weeks_after": 3,
            "surplus_at_risk_kg_before": 78000.0,
            "surplus_at_risk_kg_after": 41000.0,
            "value_at_risk_cny_before": 410000.0,
            "value_at_risk_cny_after": 215000.0,
            "campaigns_before": 2,
            "campaigns_after": 1,
        }
    ],
    "campaigns": [
        {
            "platform": "pdd",
            "platform_name": "Pinduoduo",
            "crop": "garlic",
            "region": "zhongmou",
            "start": "2026-05-25",
            "end": "2026-06-07",
            "target_kg": 52000.0,
            "expected_absorbed_kg": 39000.0,
            "value_saved_cny": 205000.0,
            "reasons": ["garlic surplus of 61.2 t in zhongmou in the week of 2026-05-25"],
        }
    ],
}
_COUNTS = ("surplus_weeks", "campaigns")


@router.post(
    "/whatif",
    summary="What if the plan or the weather were different (nothing saved)",
    response_model=WhatIfOut,
    responses=responses(WHATIF_EXAMPLE, 401, 403, 409),
)
def what_if(body: WhatIfIn, key: ManagerKey, context: ContextDep) -> WhatIfOut:
    """Forecast the current plan and the plan changed (areas scaled per crop, plantings
    moved per crop, a weather scenario) through the same models as the forecast run, and
    compare their surplus per crop and region; the campaigns the changed plan would need.
    With no change, the campaigns are the forecast run's own. Nothing is saved.

    A crop no field grows, or an unknown weather scenario: 422 naming the field, before any
    model runs. A date the registry cannot forecast: 409.
    """
    forecasts = context.forecasts
    as_of = body.as_of
    if as_of is None:
        newest = forecasts.results()
        as_of = newest.as_of if newest is not None else china_today(context.clock)
    change = PlanChange(
        area_scale_by_crop=body.area_scale,
        planting_shift_days_by_crop=body.planting_shift_days,
        weather=body.weather,
    )
    try:
        forecasts.check_plan_change(as_of, change)
        result = forecasts.what_if(as_of, change)
    except InvalidRequest as exc:
        field = _bad_part(forecasts, as_of, change)
        raise ProblemError(
            422,
            str(exc),
            slug="validation",
            title="Request validation failed",
            errors=[
                {
                    "in": "body",
                    "field": field,
                    "pointer": "#/" + field.replace(".", "/"),
                    "detail": str(exc),
                }
            ],
        ) from None
    except ChainError as exc:
        raise ProblemError(409, str(exc), slug="cannot-forecast", title="Cannot forecast") from None
    log.info("what-if as of %s by %s: %s", as_of, key.label, change)
    compared: list[dict[str, Any]] = result.comparison().to_dict("records")
    return WhatIfOut(
        as_of=as_of,
        comparison=[WhatIfComparison(**_counted(row)) for row in compared],
        campaigns=[
            WhatIfCampaign(
                platform=c.platform,
                platform_name=c.platform_name,
                crop=c.crop,
                region=c.region,
                start=c.start,
                end=c.end,
                target_kg=c.target_kg,
                expected_absorbed_kg=c.expected_absorbed_kg,
                value_saved_cny=c.value_saved_cny,
                reasons=list(c.reasons),
            )
            for c in sorted(result.changed.campaigns, key=lambda c: (c.start, c.platform))
        ],
    )


def _counted(row: dict[str, Any]) -> dict[str, Any]:
    # The outer join fills a crop one side lacks with 0.0: counts are whole numbers again.
    counts = {f"{name}_{side}" for name in _COUNTS for side in ("before", "after")}
    return {k: int(v) if k in counts else v for k, v in row.items()}


def _bad_part(forecasts: ForecastService, as_of: date, change: PlanChange) -> str:
    """Which part of the request ``change`` failed on, as a body field name: each part is
    checked alone (the registry's plan is read once per part, only when one failed)."""
    parts: list[tuple[str, PlanChange]] = []
    if change.weather is not None:
        parts.append(("weather", PlanChange(weather=change.weather)))
    parts += [
        (f"area_scale.{crop}", PlanChange(area_scale_by_crop={crop: factor}))
        for crop, factor in change.area_scale_by_crop.items()
    ]
    parts += [
        (f"planting_shift_days.{crop}", PlanChange(planting_shift_days_by_crop={crop: days}))
        for crop, days in change.planting_shift_days_by_crop.items()
    ]
    for name, part in parts:
        try:
            forecasts.check_plan_change(as_of, part)
        except InvalidRequest:
            return name
    return ""
