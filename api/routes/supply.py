"""``GET /v1/supply``: what the farms will bring to market, week by week, for platforms.

Aggregated by crop and region from the newest forecast run's weekly supply:
no farm, field or reading is ever named, since a platform plans campaigns
on regions and must not learn which farm is about to have a glut.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ForecastsDep, PlatformKey
from api.openapi import responses
from api.results import results_or_404
from api.schemas.forecasts import RunStamp, SupplyOut, WeeklySupplyPublic

router = APIRouter(tags=["platforms"])

SUPPLY_EXAMPLE = {
    "as_of": "2026-04-15",
    "model_version": "yield-qgbr-garlic+maize+tomato-2025-3f9a2c7e",
    "run_id": 42,
    "weeks": [
        {
            "crop": "garlic",
            "region": "zhongmou",
            "week": "2026-05-18",
            "supply_kg_p10": 81000.0,
            "supply_kg_p50": 96000.0,
            "supply_kg_p90": 110000.0,
        }
    ],
}


@router.get(
    "/supply",
    summary="Projected supply by crop, region and week (platforms)",
    response_model=SupplyOut,
    responses=responses(SUPPLY_EXAMPLE, 401, 403, 404),
)
def read_supply(
    key: PlatformKey,
    forecasts: ForecastsDep,
    crop: str | None = None,
    region: str | None = None,
    first: Annotated[
        date | None, Query(alias="from", description="weeks ending on or after this day")
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="weeks starting on or before this day")
    ] = None,
) -> SupplyOut:
    """The newest forecast run's weekly supply (P10, P50, P90 kg), per crop and region."""
    results = results_or_404(forecasts, None)
    weeks = [
        WeeklySupplyPublic.model_validate(w)
        for w in results.supply
        if (crop is None or w.crop == crop)
        and (region is None or w.region == region)
        and (first is None or w.week + timedelta(days=6) >= first)
        and (last is None or w.week <= last)
    ]
    return SupplyOut(**RunStamp.of(results), weeks=weeks)
