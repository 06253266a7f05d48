"""``GET /v1/audit``: the audit log of admin actions, newest first, for admins."""

from __future__ import annotations

from fastapi import APIRouter

from agrimatch.registry.audit import entries
from api.deps import AdminKey, SessionDep
from api.errors import ProblemError
from api.openapi import responses
from api.pagination import CursorParam, LimitParam, decode_cursor, page
from api.schemas.audit import AuditEntryPublic
from api.schemas.common import Page

router = APIRouter(prefix="/audit", tags=["operations"])

ENTRY_EXAMPLE = {
    "id": 7,
    "at": "2026-12-08T09:30:00Z",
    "actor": "coop agronomist (key 3f9a2c7e1b04)",
    "action": "device.provision",
    "target": "garlic-coop-1-north-d3",
    "detail": "on garlic-coop-1/north, key 9d1e0c44a2b7",
}


@router.get(
    "",
    summary="The audit log of admin actions, newest first",
    response_model=Page[AuditEntryPublic],
    responses=responses(
        {"items": [ENTRY_EXAMPLE], "next_cursor": "eyJiZWZvcmUiOjd9"}, 400, 401, 403
    ),
)
def list_audit(
    key: AdminKey, session: SessionDep, limit: LimitParam = 50, cursor: CursorParam = None
) -> Page[AuditEntryPublic]:
    """Key creations and revocations, device provisioning, config changes, farms and
    fields created or deleted: who (the key), what, when. No secret is ever in it."""
    position = decode_cursor(cursor, "before")
    before = position["before"] if position else None
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
        raise ProblemError(400, "the cursor is not one this list handed out", slug="bad-cursor")
    rows = entries(session, limit=limit + 1, before_id=before)
    items, next_cursor = page(rows, limit, lambda e: {"before": e.id})
    return Page[AuditEntryPublic](
        items=[
            AuditEntryPublic(
                id=e.id, at=e.at, actor=e.actor, action=e.action, target=e.target, detail=e.detail
            )
            for e in items
        ],
        next_cursor=next_cursor,
    )
