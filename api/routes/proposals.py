"""Campaign proposals to a platform: list, accept, decline, report the outcome.

The state lives in :mod:`api.proposal_state`; here each call is parsed,
scoped to the key's platform (another platform's proposal reads as absent,
404) and answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.context import ApiContext
from api.deps import ActingPlatform, ContextDep, PlatformKey
from api.errors import ProblemError
from api.openapi import responses
from api.proposal_state import (
    Proposal,
    ProposalConflict,
    ProposalNotFound,
    decide,
    list_proposals,
    report_outcome,
)
from api.results import results_or_404
from api.schemas.forecasts import CampaignPublic, RunStamp
from api.schemas.proposals import (
    DeclineIn,
    OutcomeIn,
    OutcomePublic,
    ProposalPublic,
    ProposalsOut,
    ProposalState,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/proposals", tags=["platforms"])

T = TypeVar("T")

PROPOSAL_EXAMPLE = {
    "id": "pdd.garlic.zhongmou.2026-05-25",
    "status": "accepted",
    "proposed_in_run": 42,
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
    "reason": None,
    "decided_at": "2026-04-16T02:10:00Z",
    "decided_by": "pdd ops (key 3f9a2c7e1b04)",
    "outcome": None,
}
REPORTED_EXAMPLE = PROPOSAL_EXAMPLE | {
    "status": "reported",
    "outcome": {
        "kg_sold": 57400.0,
        "start": "2026-05-25",
        "end": "2026-06-07",
        "reported_at": "2026-06-09T08:00:00Z",
    },
}
LIST_EXAMPLE = {
    "as_of": "2026-04-15",
    "model_version": "yield-qgbr-garlic+maize+tomato-2025-3f9a2c7e",
    "run_id": 42,
    "proposals": [PROPOSAL_EXAMPLE],
}


def proposal_public(proposal: Proposal) -> ProposalPublic:
    campaign = CampaignPublic.model_validate(proposal.campaign)
    outcome = proposal.outcome
    return ProposalPublic(
        **campaign.model_dump(),
        id=proposal.id,
        status=proposal.status,
        proposed_in_run=proposal.proposed_in_run,
        reason=proposal.reason,
        decided_at=proposal.decided_at,
        decided_by=proposal.decided_by,
        outcome=None
        if outcome is None
        else OutcomePublic(
            kg_sold=outcome.kg_sold,
            start=outcome.start,
            end=outcome.end,
            reported_at=outcome.reported_at,
        ),
    )


def _answer(context: ApiContext, act: Callable[[Session], T]) -> T:
    """Run ``act`` in one registry transaction; its domain errors as problems."""
    try:
        with context.sessions.begin() as session:
            return act(session)
    except ProposalNotFound as exc:
        raise ProblemError(404, str(exc)) from None
    except ProposalConflict as exc:
        raise ProblemError(
            409, str(exc), slug="proposal-state", title="Not in that state"
        ) from None


@router.get(
    "",
    summary="Campaigns proposed to the platform, and its answers",
    response_model=ProposalsOut,
    responses=responses(LIST_EXAMPLE, 401, 403, 404),
)
def read_proposals(
    key: PlatformKey,
    platform: ActingPlatform,
    context: ContextDep,
    status: Annotated[ProposalState | None, Query(description="only those in this state")] = None,
) -> ProposalsOut:
    """The campaigns the newest forecast run recommends to the key's platform, each with
    its id and status (``proposed``, ``accepted``, ``declined``, ``reported``), then the
    platform's earlier answered proposals that run no longer proposes; by start date."""
    results = results_or_404(context.forecasts, None)
    with context.sessions() as session:
        proposals = list_proposals(session, results, platform)
    items = [proposal_public(p) for p in proposals if status is None or p.status == status]
    return ProposalsOut(**RunStamp.of(results), proposals=items)


@router.post(
    "/{proposal_id}/accept",
    summary="Accept a proposed campaign",
    response_model=ProposalPublic,
    responses=responses(PROPOSAL_EXAMPLE, 401, 403, 404, 409),
)
def accept(
    proposal_id: str, key: PlatformKey, platform: ActingPlatform, context: ContextDep
) -> ProposalPublic:
    """The platform will run the campaign; accepting again changes nothing, and a declined
    proposal may be accepted after all. Once its outcome is reported: 409."""
    results = context.forecasts.results()
    proposal = _answer(
        context,
        lambda s: decide(s, results, platform, proposal_id, "accepted", by=key.label),
    )
    log.info("proposal %s accepted by %s", proposal_id, key.label)
    return proposal_public(proposal)


@router.post(
    "/{proposal_id}/decline",
    summary="Decline a proposed campaign",
    response_model=ProposalPublic,
    responses=responses(
        PROPOSAL_EXAMPLE | {"status": "declined", "reason": "no stock slot that week"},
        401,
        403,
        404,
        409,
    ),
)
def decline(
    proposal_id: str,
    key: PlatformKey,
    platform: ActingPlatform,
    context: ContextDep,
    body: DeclineIn | None = None,
) -> ProposalPublic:
    """The platform will not run the campaign, optionally saying why. Once its outcome is
    reported: 409."""
    results = context.forecasts.results()
    reason = body.reason if body is not None else None
    proposal = _answer(
        context,
        lambda s: decide(
            s, results, platform, proposal_id, "declined", by=key.label, reason=reason
        ),
    )
    log.info("proposal %s declined by %s", proposal_id, key.label)
    return proposal_public(proposal)


@router.post(
    "/{proposal_id}/outcome",
    summary="Report what an accepted campaign sold",
    response_model=ProposalPublic,
    responses=responses(REPORTED_EXAMPLE, 401, 403, 404, 409, 503),
)
def outcome(
    proposal_id: str,
    body: OutcomeIn,
    key: PlatformKey,
    platform: ActingPlatform,
    context: ContextDep,
) -> ProposalPublic:
    """What the campaign sold over the days it ran. It becomes campaign history (source
    "history", its uplift measured against the platform's demand before it), what the
    forecaster's uplift estimate learns from. Reporting again corrects it. A proposal not
    accepted: 409."""
    results = context.forecasts.results()
    proposal = _answer(
        context,
        lambda s: report_outcome(
            s,
            context.store,
            results,
            platform,
            proposal_id,
            kg_sold=body.kg_sold,
            start=body.start,
            end=body.end,
        ),
    )
    log.info("outcome of proposal %s reported by %s", proposal_id, key.label)
    return proposal_public(proposal)
