"""Campaign proposals: the newest forecast's campaigns put to their platforms, and answers.

A proposal is a campaign the newest successful forecast run recommends to a
platform. Its id names the campaign, ``{platform}.{crop}.{region}.{start}``
(ids hold no dots, so the id parses back), and so does its registry row
(``campaign_proposals``), written when the platform first answers. A daily
rerun that proposes the same campaign again therefore keeps the answer, and
the row keeps the campaign as proposed, so an accepted campaign can still be
reported once newer runs have moved on.

States: ``proposed`` (no answer yet) → ``accepted`` or ``declined`` (either
may change until an outcome is reported) → ``reported`` (an accepted
campaign's outcome; it may be corrected, not undone).

**An outcome is campaign history.** Reporting what an accepted campaign sold
writes (or updates) a ``Campaign`` row with source "history", the rows the
uplift estimate (:mod:`forecasting.campaign_uplift`) learns from. Its
``volume_kg`` is the kilograms reported sold and its uplift and hangover are
measured as a demand import measures a campaign in sales history
(:func:`forecasting.imports.measure_campaign`): the
reported kilograms spread over the campaign's days, against the platform's
own demand in the store on the 28 days before (other campaigns' days left
out); no days before to compare with gives an uplift of 1.0, "no measured
effect", as there.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy.orm import Session

from agrimatch.registry.models import Campaign, CampaignProposal
from agrimatch.registry.repository import (
    list_campaigns,
    record_campaign_outcome,
    record_campaigns,
)
from agrimatch.store import TelemetryStore
from agrimatch.store.measurements import china_day_start_ms
from api.crud import get_proposal, platform_proposals
from forecasting.campaigns import HANGOVER_DAYS
from forecasting.demand_data import daily_demand_frame
from forecasting.imports import BASELINE_DAYS, CampaignEffect, measure_campaign
from forecasting.results import CampaignResult, ForecastResults

PROPOSED: Final = "proposed"
Decision = Literal["accepted", "declined"]
Status = Literal["proposed", "accepted", "declined", "reported"]
_DAY = timedelta(days=1)


class ProposalNotFound(LookupError):
    """No such proposal for this platform (another platform's reads the same)."""


class ProposalConflict(ValueError):
    """The proposal's state does not allow this; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ProposalKey:
    """The campaign a proposal proposes: platform, crop, region and first day."""

    platform: str
    crop: str
    region: str
    start: date

    @property
    def id(self) -> str:
        return f"{self.platform}.{self.crop}.{self.region}.{self.start.isoformat()}"

    @classmethod
    def parse(cls, text: str) -> ProposalKey | None:
        """The key an id names, or None if it is not one."""
        parts = text.split(".")
        if len(parts) != 4 or not all(parts):
            return None
        try:
            start = date.fromisoformat(parts[3])
        except ValueError:
            return None
        return cls(parts[0], parts[1], parts[2], start)

    @classmethod
    def of(cls, campaign: CampaignResult) -> ProposalKey:
        return cls(campaign.platform, campaign.crop, campaign.region, campaign.start)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an accepted campaign sold, as reported."""

    kg_sold: float
    start: date
    end: date
    reported_at: datetime | None


@dataclass(frozen=True, slots=True)
class Proposal:
    """A campaign proposed to a platform, its state and the answer given (if any)."""

    id: str
    status: Status
    campaign: CampaignResult
    proposed_in_run: int
    reason: str | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    outcome: Outcome | None = None
    campaign_id: int | None = None  # the history campaign an outcome was written as


def list_proposals(session: Session, results: ForecastResults, platform: str) -> list[Proposal]:
    """The platform's proposals: the campaigns of ``results`` (the newest run) addressed to
    it, with their answers, and its earlier answered ones that run no longer proposes;
    by start date."""
    rows = {_key_of_row(row): row for row in platform_proposals(session, platform)}
    proposals = []
    for campaign in results.campaigns:
        if campaign.platform == platform:
            key = ProposalKey.of(campaign)
            proposals.append(_proposal(key, campaign, results.run_id, rows.pop(key, None)))
    proposals += [_from_row(row) for row in rows.values()]
    return sorted(proposals, key=lambda p: (p.campaign.start, p.campaign.crop, p.id))


def decide(
    session: Session,
    results: ForecastResults | None,
    platform: str,
    proposal_id: str,
    decision: Decision,
    *,
    by: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> Proposal:
    """Accept or decline a proposal of ``platform``; the answer may change until an
    outcome is reported. Flushes; the caller commits.

    Raises :class:`ProposalNotFound` for an id that is not one of the
    platform's proposals, :class:`ProposalConflict` once its outcome is reported.
    """
    key, row, campaign = _find(session, results, platform, proposal_id)
    if row is not None and row.status == "reported":
        raise ProposalConflict(
            f"proposal {key.id} has its outcome reported; its answer cannot change now "
            "(POST its outcome again to correct the outcome)"
        )
    reason = reason if decision == "declined" else None
    if row is None:
        assert campaign is not None and results is not None  # _find found one of the two
        row = CampaignProposal(
            platform_id=key.platform,
            crop=key.crop,
            region_id=key.region,
            start_on=key.start,
            end_on=campaign.end,
            run_id=results.run_id,
            campaign_json=_campaign_json(campaign),
        )
        session.add(row)
    elif campaign is not None and results is not None:
        # Answered again from a newer run: keep the campaign as it is proposed now.
        row.end_on, row.run_id = campaign.end, results.run_id
        row.campaign_json = _campaign_json(campaign)
    if row.status != decision or row.reason != reason:
        row.status = decision
        row.reason = reason
        row.decided_at = now or datetime.now(UTC)
        row.decided_by = by
    session.flush()
    return _from_row(row)


def report_outcome(
    session: Session,
    store: TelemetryStore,
    results: ForecastResults | None,
    platform: str,
    proposal_id: str,
    *,
    kg_sold: float,
    start: date,
    end: date,
    now: datetime | None = None,
) -> Proposal:
    """Record what an accepted proposal's campaign sold, and write it as history (see the
    module docstring). Reporting again corrects the outcome. Flushes; the caller commits.

    Raises :class:`ProposalNotFound` for an id that is not one of the
    platform's proposals, :class:`ProposalConflict` for one not accepted.
    """
    key, row, _ = _find(session, results, platform, proposal_id)
    if row is None or row.status not in ("accepted", "reported"):
        state = PROPOSED if row is None else row.status
        raise ProposalConflict(
            f"proposal {key.id} is {state}: only an accepted campaign has an outcome to "
            f"report (POST /v1/proposals/{key.id}/accept first)"
        )
    earlier = row.campaign_id
    effect = _measured(session, store, key, start, end, kg_sold, earlier)
    facts = _HistoryCampaign(
        key.platform, key.crop, key.region, start, end, effect.uplift, effect.hangover
    )
    # record_campaigns expires the session's objects: nothing of ``row`` is pending here.
    (campaign,) = record_campaigns(session, [facts], source="history")
    record_campaign_outcome(session, campaign.id, volume_kg=kg_sold)
    if earlier is not None and earlier != campaign.id:
        # A corrected start moved the campaign: the history row of the old start was ours.
        old = session.get(Campaign, earlier)
        if old is not None:
            session.delete(old)
    row.status = "reported"
    row.kg_sold, row.sold_start, row.sold_end = kg_sold, start, end
    row.reported_at = now or datetime.now(UTC)
    row.campaign_id = campaign.id
    session.flush()
    return _from_row(row)


# --- helpers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _HistoryCampaign:
    """A reported campaign as ``agrimatch.registry.CampaignFacts``."""

    platform: str
    crop: str
    region: str
    start: date
    end: date
    uplift: float
    hangover: float


def _find(
    session: Session, results: ForecastResults | None, platform: str, proposal_id: str
) -> tuple[ProposalKey, CampaignProposal | None, CampaignResult | None]:
    """The proposal's key, its row and its campaign in the newest run; not found unless it is
    the platform's and at least one of the two exists."""
    key = ProposalKey.parse(proposal_id)
    if key is None or key.platform != platform:
        raise ProposalNotFound(f"no proposal {proposal_id!r}")
    row = get_proposal(session, key.platform, key.crop, key.region, key.start)
    campaign = None
    if results is not None:
        campaign = next((c for c in results.campaigns if ProposalKey.of(c) == key), None)
    if row is None and campaign is None:
        raise ProposalNotFound(f"no proposal {proposal_id!r}")
    return key, row, campaign


def _measured(
    session: Session,
    store: TelemetryStore,
    key: ProposalKey,
    start: date,
    end: date,
    kg_sold: float,
    own_campaign: int | None,
) -> CampaignEffect:
    """The reported campaign's effect, measured against the platform's stored demand."""
    first = start - BASELINE_DAYS * _DAY
    last = end + HANGOVER_DAYS * _DAY
    stored = daily_demand_frame(
        store,
        china_day_start_ms(first),
        china_day_start_ms(last + _DAY),
        {"platform": key.platform, "crop": key.crop, "region": key.region},
    )
    daily_kg = {
        day: float(kg)
        for day, kg in zip(stored["day"], stored["quantity_kg"], strict=True)
        if not math.isnan(kg)
    }
    days = [start + n * _DAY for n in range((end - start).days + 1)]
    # What the platform reports the campaign sold is the truth of its days.
    daily_kg.update(dict.fromkeys(days, kg_sold / len(days)))
    campaign_days = set(days)
    for other in list_campaigns(
        session,
        platform_id=key.platform,
        crop=key.crop,
        region_id=key.region,
        source="history",
        overlapping=(first, last),
    ):
        if other.id != own_campaign:
            span = (other.end_on - other.start_on).days
            campaign_days.update(other.start_on + n * _DAY for n in range(span + 1))
    return measure_campaign(daily_kg, campaign_days, start, end)


def _proposal(
    key: ProposalKey, campaign: CampaignResult, run_id: int, row: CampaignProposal | None
) -> Proposal:
    if row is None:
        return Proposal(key.id, PROPOSED, campaign, run_id)
    return _from_row(row, campaign, run_id)


def _from_row(
    row: CampaignProposal, campaign: CampaignResult | None = None, run_id: int | None = None
) -> Proposal:
    """A proposal from its row; ``campaign`` and ``run_id`` when the newest run proposes it."""
    outcome = None
    if row.kg_sold is not None and row.sold_start is not None and row.sold_end is not None:
        outcome = Outcome(row.kg_sold, row.sold_start, row.sold_end, _aware(row.reported_at))
    return Proposal(
        id=_key_of_row(row).id,
        status=row.status,
        campaign=campaign or _campaign_of_json(row.campaign_json),
        proposed_in_run=run_id if run_id is not None else row.run_id,
        reason=row.reason,
        decided_at=_aware(row.decided_at),
        decided_by=row.decided_by,
        outcome=outcome,
        campaign_id=row.campaign_id,
    )


def _key_of_row(row: CampaignProposal) -> ProposalKey:
    return ProposalKey(row.platform_id, row.crop, row.region_id, row.start_on)


_DATE_FIELDS = ("start", "end", "spoils_from")


def _campaign_json(campaign: CampaignResult) -> str:
    body: dict[str, Any] = asdict(campaign)
    for name in _DATE_FIELDS:
        value = body[name]
        body[name] = None if value is None else value.isoformat()
    return json.dumps(body)


def _campaign_of_json(text: str) -> CampaignResult:
    body = json.loads(text)
    values: dict[str, Any] = {f.name: body.get(f.name) for f in fields(CampaignResult)}
    for name in _DATE_FIELDS:
        if values[name] is not None:
            values[name] = date.fromisoformat(values[name])
    values["reasons"] = tuple(values["reasons"] or ())
    return CampaignResult(**values)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for DateTime(timezone=True); they were written as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
