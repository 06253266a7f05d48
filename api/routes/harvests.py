"""``POST /v1/harvests``: harvest reports, the field-seasons' truth the yield model learns from."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from agrimatch.auth import ApiKeyInfo
from api.deps import ContextDep, ManagerKey
from api.errors import ProblemError
from api.imports import import_good_rows, import_result
from api.openapi import responses
from api.schemas.imports import HarvestsIn, ImportResult
from api.scope import scope_text
from forecasting.imports import BadRow, ImportFormatError, import_harvests, table_from_records

log = logging.getLogger(__name__)

router = APIRouter(tags=["harvests"])

_REPORTER_LENGTH = 200  # the registry column's
RESULT_EXAMPLE = {
    "kind": "harvests",
    "rows": 2,
    "rows_written": 1,
    "counts": {"seasons (harvest recorded)": 1},
    "bad_rows": [
        {
            "position": 2,
            "column": "yield_t_ha",
            "reason": "160 t/ha is above 75 t/ha, 3 times garlic's potential yield (25 t/ha): "
            "check the unit (tonnes, per hectare; not kg, not per mu)",
        }
    ],
    "ignored_columns": [],
    "notes": [],
}
RULE = """\
**Good rows are written, bad rows are reported.** Unlike a CSV import (all or
nothing), every row is checked as `agrimatch import harvests` checks it, each
bad row is listed with its position in `rows` (from 1), its column and the
reason, and the good rows are recorded all the same. Fix the bad rows and post
them again: a report replaces the season's earlier truth, and the same report
posted twice is one report.
"""


def reporter(key: ApiKeyInfo) -> str:
    """Who a report pushed with ``key`` is recorded as reported by: the key's name and id."""
    return key.label[:_REPORTER_LENGTH]


@router.post(
    "/harvests",
    summary="Report harvests (yield and dates of field-seasons)",
    response_model=ImportResult,
    responses=responses(RESULT_EXAMPLE, 401, 403, 413),
    description=(
        "Each row: `farm`, `field`, `season` (the harvest year), `harvest_start`, "
        "`harvest_end`, one of `yield_t_ha` or `quantity_t`, optionally `harvest_peak` "
        "(default the midpoint). The season must be planned (a field's row); `reported_by` "
        "is the key. An agronomist's row for a farm outside its key's farms is a bad row.\n\n"
        + RULE
    ),
)
def post_harvests(body: HarvestsIn, key: ManagerKey, context: ContextDep) -> ImportResult:
    """Record the truth of field-seasons, through the harvests import."""
    records = [row.model_dump() | {"reported_by": reporter(key)} for row in body.rows]
    refused = []
    for position, record in enumerate(records, start=1):
        farm = str(record.get("farm") or "").strip()
        # An empty or malformed farm is the import's to report; a farm beyond the key's is ours.
        if farm and not key.may_manage_farm(farm):
            reason = f"{farm} is not one of {scope_text(key)}: report your farms' harvests only"
            refused.append(BadRow(position, "farm", reason))
    try:
        with context.sessions.begin() as session:
            done = import_good_rows(
                "harvests",
                table_from_records(records),
                lambda table, dry: import_harvests(session, table, dry_run=dry),
                refused,
            )
    except ImportFormatError as exc:
        raise ProblemError(
            422, str(exc), slug="validation", title="Request validation failed"
        ) from None
    log.info("harvests from %s: %d of %d rows written", key.label, done.rows_written, done.rows)
    return import_result(done)
