"""Recommendations of a forecast run: campaigns to organise, and what to plant next season."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter

from agrimatch.auth import ApiKeyInfo
from api.deps import ForecastsDep, ManagerKey
from api.openapi import responses
from api.results import results_or_404
from api.schemas.forecasts import (
    CampaignPublic,
    CampaignsOut,
    PlantingOut,
    PlantingPublic,
    RunStamp,
)
from api.scope import farm_scope
from forecasting.results import PlantingResult

router = APIRouter(prefix="/recommendations", tags=["recommendations"])

STAMP_EXAMPLE = {
    "as_of": "2026-04-15",
    "model_version": "yield-qgbr-garlic+maize+tomato-2025-3f9a2c7e",
    "run_id": 42,
}
CAMPAIGN_EXAMPLE = {
    "rank": 1,
    "platform": "pdd",
    "platform_name": "Pinduoduo",
    "crop": "garlic",
    "region": "zhongmou",
    "start": "2026-05-25",
    "end": "2026-06-07",
    "target_kg": 61000.0,
    "expected_absorbed_kg": 48000.0,
    "value_saved_cny": 252000.0,
    "surplus_value_at_risk_cny": 410000.0,
    "surplus_at_risk_kg": 78000.0,
    "spoils_from": "2026-06-15",
    "reasons": ["garlic surplus of 89.7 t in zhongmou in the week of 2026-05-25"],
}
PLANTING_EXAMPLE = {
    "crop": "garlic",
    "region": "zhongmou",
    "current_ha": 18.4,
    "recommended_ha": 14.9,
    "change_ha": -3.5,
    "expected_price_cny_per_kg_before": 4.2,
    "expected_price_cny_per_kg_after": 5.1,
    "observed_price_cny_per_kg": 4.3,
    "expected_margin_cny_before": 610000.0,
    "expected_margin_cny_after": 655000.0,
    "risk": "cvar",
    "farms": [
        {
            "farm": "garlic-coop-1",
            "current_ha": 2.5,
            "recommended_ha": 2.0,
            "change_ha": -0.5,
            "binding": [],
            "reasons": ["the regional garlic surplus lowers the expected price"],
        }
    ],
}


@router.get(
    "/campaigns",
    summary="Campaigns to organise, by date",
    response_model=CampaignsOut,
    responses=responses(STAMP_EXAMPLE | {"campaigns": [CAMPAIGN_EXAMPLE]}, 401, 403, 404),
)
def read_campaigns(
    key: ManagerKey, forecasts: ForecastsDep, as_of: date | None = None
) -> CampaignsOut:
    """The group-buying campaigns the newest run (or that of ``as_of``) recommends, by start
    date, each with what it alone is expected to save and why."""
    results = results_or_404(forecasts, as_of)
    campaigns = [CampaignPublic.model_validate(c) for c in results.campaigns]
    return CampaignsOut(**RunStamp.of(results), campaigns=campaigns)


@router.get(
    "/planting",
    summary="Next season's area per crop and region, and each farm's part",
    response_model=PlantingOut,
    responses=responses(STAMP_EXAMPLE | {"planting": [PLANTING_EXAMPLE]}, 401, 403, 404),
)
def read_planting(
    key: ManagerKey, forecasts: ForecastsDep, as_of: date | None = None
) -> PlantingOut:
    """The planting recommendation of the newest run (or that of ``as_of``), largest change
    first. An agronomist sees the regions' totals and, in ``farms``, its own farms only."""
    results = results_or_404(forecasts, as_of)
    planting = [_visible(p, key) for p in results.planting]
    return PlantingOut(**RunStamp.of(results), planting=planting)


def _visible(plan: PlantingResult, key: ApiKeyInfo) -> PlantingPublic:
    public = PlantingPublic.model_validate(plan)
    scope = farm_scope(key)
    if scope is not None:
        public.farms = [f for f in public.farms if f.farm in scope]
    return public
