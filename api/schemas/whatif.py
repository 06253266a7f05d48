"""A what-if: a changed plan (or weather) asked, the outlook before and after answered."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Factor = Annotated[float, Field(gt=0, le=100)]
ShiftDays = Annotated[int, Field(ge=-366, le=366)]


class WhatIfIn(BaseModel):
    """Changes to the current plan; anything left empty stays as it is."""

    model_config = ConfigDict(extra="forbid")

    as_of: date | None = Field(
        default=None, description="default: that of the newest forecast run (else today)"
    )
    area_scale: dict[str, Factor] = Field(
        default_factory=dict, description="crop → factor on its area", examples=[{"garlic": 0.8}]
    )
    planting_shift_days: dict[str, ShiftDays] = Field(
        default_factory=dict,
        description="crop → days its planting moves (later when positive)",
        examples=[{"maize": 10}],
    )
    weather: str | None = Field(
        default=None, description="a weather scenario: drought, heat_wave, wet_spell, frost"
    )


class WhatIfComparison(BaseModel):
    """Per crop and region, the surplus of the current plan (before) and the changed one."""

    crop: str
    region: str
    peak_surplus_kg_p50_before: float
    peak_surplus_kg_p50_after: float
    surplus_weeks_before: int
    surplus_weeks_after: int
    surplus_at_risk_kg_before: float
    surplus_at_risk_kg_after: float
    value_at_risk_cny_before: float
    value_at_risk_cny_after: float
    campaigns_before: int
    campaigns_after: int


class WhatIfCampaign(BaseModel):
    """A campaign the changed plan would need."""

    platform: str
    platform_name: str
    crop: str
    region: str
    start: date
    end: date
    target_kg: float
    expected_absorbed_kg: float
    value_saved_cny: float
    reasons: list[str]


class WhatIfOut(BaseModel):
    """Computed, not saved."""

    as_of: date
    comparison: list[WhatIfComparison]
    campaigns: list[WhatIfCampaign] = Field(description="of the changed plan, by start date")
