"""Cursor pagination: ``?limit=&cursor=``, pages of ``{items, next_cursor}``.

The cursor is opaque to clients: base64url of a small JSON object holding the
keyset position of the last item sent (e.g. ``{"after": "dev-0042"}``). A
keyset, unlike an offset, neither skips nor repeats rows when rows are added
between two pages. The scope of the caller is applied on every page, so an
edited cursor can at most move within what the caller may see anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query

from api.errors import ProblemError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")

LimitParam = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page, at most {MAX_LIMIT}")
]
CursorParam = Annotated[
    str | None, Query(max_length=500, description="next_cursor of the previous page")
]


def encode_cursor(position: dict[str, Any]) -> str:
    """The opaque cursor of a keyset position."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, *keys: str) -> dict[str, Any] | None:
    """The keyset position in ``cursor`` (None for the first page).

    Raises a 400 problem when it is not a cursor this API made with ``keys``.
    """
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError):
        position = None
    if not isinstance(position, dict) or set(position) != set(keys):
        raise ProblemError(
            400, "the cursor is not one this list handed out", slug="bad-cursor", title="Bad cursor"
        )
    return position


def page(
    rows: Sequence[T], limit: int, position_of: Callable[[T], dict[str, Any]]
) -> tuple[list[T], str | None]:
    """Cut ``rows`` (fetched with ``limit + 1``) to a page and its next cursor."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, encode_cursor(position_of(items[-1])) if more and items else None
