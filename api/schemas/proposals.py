"""Campaign proposals: a recommended campaign addressed to a platform, and its answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from api.schemas.forecasts import CampaignPublic, RunStamp

ProposalState = Literal["proposed", "accepted", "declined", "reported"]


class OutcomePublic(BaseModel):
    """What the campaign sold, as the platform reported it."""

    kg_sold: float
    start: date
    end: date
    reported_at: datetime | None


class ProposalPublic(CampaignPublic):
    """A campaign proposed to the platform, with its id, status and the answer given."""

    id: str = Field(description="{platform}.{crop}.{region}.{start}: the campaign it proposes")
    status: ProposalState
    proposed_in_run: int = Field(description="the forecast run it was (last) proposed in")
    reason: str | None = Field(description="why it was declined, if said")
    decided_at: datetime | None
    decided_by: str | None = Field(description="the key that answered")
    outcome: OutcomePublic | None


class ProposalsOut(RunStamp):
    """The newest run's campaigns for the platform, then its earlier answered ones."""

    proposals: list[ProposalPublic]


class DeclineIn(BaseModel):
    reason: str | None = Field(default=None, max_length=1000)


class OutcomeIn(BaseModel):
    """What an accepted campaign sold over the days it ran."""

    kg_sold: float = Field(ge=0, examples=[42000.0])
    start: date
    end: date

    @field_validator("end")
    @classmethod
    def _not_before_start(cls, end: date, info: ValidationInfo) -> date:
        start = info.data.get("start")
        if start is not None and end < start:
            raise ValueError(f"end {end} is before start {start}")
        return end
