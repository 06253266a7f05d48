"""Forecast results as served: the public result types of :mod:`forecasting.results`.

Field names are those of the result dataclasses, one for one (a test holds
them to it), so the API, the CLI's JSON and the dashboard speak alike. Dates
are ISO. Results of a run come with the run's stamp (``as_of``,
``model_version``, ``run_id``). A number a run stored before it was
recorded reads null.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from forecasting.results import ForecastResults


class RunStamp(BaseModel):
    """Which forecast run the results are of."""

    as_of: date
    model_version: str
    run_id: int

    @classmethod
    def of(cls, results: ForecastResults) -> dict[str, Any]:
        """The stamp's fields of ``results``, to build a response with."""
        return {
            "as_of": results.as_of,
            "model_version": results.model_version,
            "run_id": results.run_id,
        }


class _FromResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DriverPublic(_FromResult):
    """What moved a field's yield forecast: a feature and its effect on the P50 (t/ha)."""

    feature: str
    effect_t_ha: float


class FieldForecastPublic(_FromResult):
    """A field-season's yield quantiles (t/ha), harvest window and drivers.

    ``interval_trust`` ``"few_seasons"``: the P10-P90 rests on too few harvested seasons
    of the crop (``training_seasons``) to be trusted; ``calibration``: what calibrated it.
    Null for a forecast stored before they were recorded.
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
    drivers: list[DriverPublic]
    interval_trust: Literal["ok", "few_seasons"] | None = Field(
        description="few_seasons: too few harvested seasons of the crop to trust P10-P90"
    )
    training_seasons: int | None = Field(
        description="harvested seasons of the crop the interval learned from"
    )
    calibration: Literal["cross_validated", "stored_residuals", "past_yields"] | None = Field(
        description="cross_validated: the model's held-out seasons; stored_residuals: the "
        "forecasts stored for harvested seasons at the same lead; past_yields: not sown yet"
    )


class FieldForecastOut(RunStamp):
    forecast: FieldForecastPublic


class CampaignPublic(_FromResult):
    """A group-buying campaign to organise: where, when, how much, and why.

    ``value_saved_cny`` is what this campaign alone saves; ``surplus_value_at_risk_cny``
    and ``surplus_at_risk_kg`` are of the whole surplus episode it belongs to.
    """

    rank: int
    platform: str
    platform_name: str
    crop: str
    region: str
    start: date
    end: date
    target_kg: float
    expected_absorbed_kg: float
    value_saved_cny: float | None
    surplus_value_at_risk_cny: float
    surplus_at_risk_kg: float | None
    spoils_from: date | None
    reasons: list[str]


class CampaignsOut(RunStamp):
    campaigns: list[CampaignPublic] = Field(description="by start date")


class FarmPlantingChangePublic(_FromResult):
    """One farm's area of a crop this season and next; ``change_ha`` negative: plant less."""

    farm: str
    current_ha: float
    recommended_ha: float
    change_ha: float
    binding: list[str]
    reasons: list[str]


class PlantingPublic(_FromResult):
    """Next season's area of a crop in a region, with each farm's part."""

    crop: str
    region: str
    current_ha: float
    recommended_ha: float
    change_ha: float
    expected_price_cny_per_kg_before: float
    expected_price_cny_per_kg_after: float
    observed_price_cny_per_kg: float | None = Field(
        description="the price the platforms observed, which the model's price is anchored "
        "on; null when the crop was priced from the catalog"
    )
    expected_margin_cny_before: float
    expected_margin_cny_after: float
    risk: str
    farms: list[FarmPlantingChangePublic]


class PlantingOut(RunStamp):
    planting: list[PlantingPublic] = Field(description="largest change first")


class WeeklySupplyPublic(_FromResult):
    """Projected supply of a crop in a region in the week from ``week`` (a Monday), kg."""

    crop: str
    region: str
    week: date
    supply_kg_p10: float
    supply_kg_p50: float
    supply_kg_p90: float


class SupplyOut(RunStamp):
    weeks: list[WeeklySupplyPublic]


class WeeklyBalancePublic(_FromResult):
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
    surplus_kg_p50: float = Field(description="negative: a shortfall")
    p_surplus: float
    p_shortfall: float


class BalanceOut(RunStamp):
    weeks: list[WeeklyBalancePublic]


class ForecastRunIn(BaseModel):
    as_of: date | None = Field(default=None, description="default: today (China)")


class ForecastRunOut(BaseModel):
    """A forecast run as recorded: ``ok`` with its results saved, or ``failed`` and why."""

    run_id: int
    status: Literal["running", "ok", "failed"]
    as_of: date
    model_version: str | None
    error: str | None
