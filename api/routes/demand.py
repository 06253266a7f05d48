"""``POST /v1/demand``: a platform's observed demand (sales by day), for the demand forecast."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from agrimatch.auth import ApiKeyInfo
from api.deps import ActingPlatform, ContextDep, PlatformKey
from api.errors import ProblemError
from api.imports import import_good_rows, import_result
from api.openapi import responses
from api.schemas.imports import DemandIn, ImportResult
from forecasting.imports import BadRow, ImportFormatError, import_demand, table_from_records

log = logging.getLogger(__name__)

router = APIRouter(tags=["platforms"])

RESULT_EXAMPLE = {
    "kind": "demand",
    "rows": 3,
    "rows_written": 2,
    "counts": {"demand days": 2, "platforms (new)": 0, "campaigns (history)": 1},
    "bad_rows": [
        {
            "position": 3,
            "column": "price_cny_per_kg",
            "reason": "is 0: give the mean price paid in CNY per kg, above 0",
        }
    ],
    "ignored_columns": [],
    "notes": [
        "campaign pdd/garlic/zhongmou 2026-06-18..2026-06-18: 5,200 kg, uplift 2.10× over "
        "28 days before, hangover 8%"
    ],
}
RULE = """\
**Good rows are written, bad rows are reported.** Unlike a CSV import (all or
nothing), every row is checked as `agrimatch import demand` checks it, each bad
row is listed with its position in `rows` (from 1), its column and the reason,
and the good rows are stored all the same. Storing is idempotent by platform,
crop, region and day: posting the same rows again stores the same points, so a
failed request is simply sent again.
"""


@router.post(
    "/demand",
    summary="Push observed demand (a platform's sales by day)",
    response_model=ImportResult,
    responses=responses(RESULT_EXAMPLE, 401, 403, 404, 413, 503),
    description=(
        "Each row: `crop`, `region`, `day` (or a week's Monday as `week`), `quantity_kg`, "
        "`orders`, `price_cny_per_kg`, optionally `campaign` (a label on group-buying "
        "campaign days; consecutive days become a history campaign, its uplift measured). "
        "The platform is the key's; a row naming another `platform` is a bad row. An admin "
        "key names the platform with `?platform=`. At most 5000 rows.\n\n" + RULE
    ),
)
def post_demand(
    body: DemandIn, key: PlatformKey, platform: ActingPlatform, context: ContextDep
) -> ImportResult:
    """Store a platform's daily demand, through the demand import."""
    records = []
    refused = []
    for position, row in enumerate(body.rows, start=1):
        record = row.model_dump()
        named = str(record.get("platform") or "").strip()
        if named and named != platform:
            reason = f"{named} is not this key's platform {platform}: push your own demand only"
            refused.append(BadRow(position, "platform", reason))
        records.append(record | {"platform": platform})
    try:
        with context.sessions.begin() as session:
            done = import_good_rows(
                "demand",
                table_from_records(records),
                lambda table, dry: import_demand(session, context.store, table, dry_run=dry),
                refused,
            )
    except ImportFormatError as exc:
        raise ProblemError(
            422, str(exc), slug="validation", title="Request validation failed"
        ) from None
    _log(key, platform, done.rows_written, done.rows)
    return import_result(done)


def _log(key: ApiKeyInfo, platform: str, written: int, rows: int) -> None:
    log.info("demand of %s from %s: %d of %d rows written", platform, key.label, written, rows)
