"""Dependencies as typed aliases: a route declares what it needs in its signature.

``SettingsDep``, ``StoreDep``, ``SessionDep`` (a registry session, closed after
the request), ``ForecastsDep`` (the forecast service), ``CurrentKey`` (the
caller's API key, 401 without a valid one) and role guards:
``require_role("admin", "agronomist")`` or the aliases ``AdminKey``,
``DeviceKey``, ``ManagerKey`` (admin or agronomist), ``PlatformKey`` (platform
or admin) and ``ActingPlatform`` (the platform a platform route acts for).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from agrimatch.auth import ApiKeyInfo, Role, authenticate, note_key_used
from agrimatch.auth.keys import LAST_USED_RESOLUTION
from agrimatch.settings import Settings
from agrimatch.store import TelemetryStore
from api.context import ApiContext
from api.errors import ProblemError
from api.scope import acting_platform_id
from forecasting.service import ForecastService

log = logging.getLogger(__name__)

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key, `Authorization: Bearer agm_<id>_<secret>` (`agrimatch keys create`)",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="agrimatch"'}


def get_context(request: Request) -> ApiContext:
    """The services the lifespan opened."""
    context: ApiContext = request.app.state.context
    return context


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_settings(context: ContextDep) -> Settings:
    return context.settings


def get_store(context: ContextDep) -> TelemetryStore:
    return context.store


def get_session(context: ContextDep) -> Iterator[Session]:
    """A registry session for the request; the route commits what it writes."""
    with context.sessions() as session:
        yield session


def get_forecasts(context: ContextDep) -> ForecastService:
    return context.forecasts


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[TelemetryStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]
ForecastsDep = Annotated[ForecastService, Depends(get_forecasts)]


def current_key(
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKeyInfo:
    """The caller's live API key; a 401 problem without one."""
    if credentials is None:
        raise ProblemError(
            401,
            "an API key is required: Authorization: Bearer agm_<id>_<secret>",
            slug="unauthorized",
            title="Unauthorized",
            headers=_CHALLENGE,
        )
    with context.sessions() as session:
        key = authenticate(session, credentials.credentials, context.key_pepper)
    if key is None:
        # One answer for unknown, wrong and revoked keys: nothing to probe.
        raise ProblemError(
            401,
            "the API key is not valid (unknown, wrong or revoked)",
            slug="unauthorized",
            title="Unauthorized",
            headers=_CHALLENGE,
        )
    _note_used(context, key)
    return key


def _note_used(context: ApiContext, key: ApiKeyInfo) -> None:
    # Its own transaction, and only a hint: a request is never refused for it.
    last = key.last_used_at
    if last is not None and datetime.now(UTC) - last < LAST_USED_RESOLUTION:
        return
    try:
        with context.sessions.begin() as session:
            note_key_used(session, key.id)
    except SQLAlchemyError as exc:
        log.warning("could not note the use of key %s: %s", key.id, type(exc).__name__)


CurrentKey = Annotated[ApiKeyInfo, Depends(current_key)]


def require_role(*roles: Role | str) -> Callable[[ApiKeyInfo], ApiKeyInfo]:
    """A dependency admitting keys of ``roles`` only (403 problem for the others)."""
    allowed = frozenset(Role(r) for r in roles)
    names = " or ".join(sorted(r.value for r in allowed))

    def guard(key: CurrentKey) -> ApiKeyInfo:
        if key.role not in allowed:
            raise ProblemError(
                403,
                f"this takes a key of role {names}; this key's role is {key.role.value}",
                slug="forbidden",
                title="Forbidden",
            )
        return key

    return guard


AdminKey = Annotated[ApiKeyInfo, Depends(require_role(Role.ADMIN))]
DeviceKey = Annotated[ApiKeyInfo, Depends(require_role(Role.DEVICE))]
ManagerKey = Annotated[ApiKeyInfo, Depends(require_role(Role.ADMIN, Role.AGRONOMIST))]
PlatformKey = Annotated[ApiKeyInfo, Depends(require_role(Role.PLATFORM, Role.ADMIN))]


def acting_platform(
    key: PlatformKey,
    session: SessionDep,
    platform: Annotated[
        str | None,
        Query(max_length=64, description="admin keys only: the platform to act for"),
    ] = None,
) -> str:
    """The platform a platform route acts for: the key's, or an admin's ``?platform=``."""
    return acting_platform_id(session, key, platform)


ActingPlatform = Annotated[str, Depends(acting_platform)]
