"""``GET /v1/jobs``: recent runs of the scheduled jobs (forecast, retrain...), for admins."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from agrimatch.registry.models import JobRun
from api.crud import job_runs_page
from api.deps import AdminKey, SessionDep
from api.errors import ProblemError
from api.openapi import responses
from api.pagination import CursorParam, LimitParam, decode_cursor, page
from api.schemas.common import Page
from api.schemas.operations import JobRunPublic

router = APIRouter(prefix="/jobs", tags=["operations"])

RUN_EXAMPLE = {
    "id": 42,
    "job": "forecast",
    "as_of": "2026-12-08",
    "started_at": "2026-12-08T03:00:00Z",
    "ended_at": "2026-12-08T03:02:41Z",
    "status": "ok",
    "model_version": "yield-qgbr-2026.12.01",
    "metrics": {"fields": 118, "recommendations": 6},
    "error": None,
}


def _public(run: JobRun) -> JobRunPublic:
    metrics: dict[str, Any] | None = json.loads(run.metrics_json) if run.metrics_json else None
    return JobRunPublic(
        id=run.id,
        job=run.job,
        as_of=run.as_of,
        started_at=run.started_at,
        ended_at=run.ended_at,
        status=run.status,
        model_version=run.model_version,
        metrics=metrics,
        error=run.error,
    )


@router.get(
    "",
    summary="Recent job runs, newest first",
    response_model=Page[JobRunPublic],
    responses=responses(
        {"items": [RUN_EXAMPLE], "next_cursor": "eyJiZWZvcmUiOjQyfQ"}, 400, 401, 403
    ),
)
def list_job_runs(
    key: AdminKey,
    session: SessionDep,
    job: str | None = None,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
) -> Page[JobRunPublic]:
    """Runs of all jobs (or of ``job``), newest first, with their metrics or error."""
    position = decode_cursor(cursor, "before")
    before = position["before"] if position else None
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
        raise ProblemError(400, "the cursor is not one this list handed out", slug="bad-cursor")
    rows = job_runs_page(session, limit=limit + 1, before_id=before, job=job)
    items, next_cursor = page(rows, limit, lambda r: {"before": r.id})
    return Page[JobRunPublic](items=[_public(r) for r in items], next_cursor=next_cursor)
