"""API keys in the registry: create (the token is returned once), list, revoke, authenticate.

Roles and their scope:

* ``device`` — one device; it posts its own telemetry and reads its config.
* ``agronomist`` — a set of farms (a cooperative is the farms it advises):
  provisions devices and sets their config on those farms.
* ``platform`` — one commerce platform: its demand, its supply view.
* ``admin`` — everything, including keys and job runs.

Functions take a ``Session`` and leave the transaction to the caller, as the
registry's repository does (they flush, never commit).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from agrimatch.auth.tokens import hash_secret, new_token, parse_token, secret_matches
from agrimatch.registry import audit
from agrimatch.registry.models import ApiKey, Device, Farm, Platform
from agrimatch.settings import Settings

# last_used_at is a hint for operators, not an audit log: writing it on every
# device request would make each telemetry post a registry write.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# Hashed when the key id is unknown, so an unknown id costs what a wrong secret does.
_DUMMY_HASH = "0" * 64


class Role(StrEnum):
    DEVICE = "device"
    AGRONOMIST = "agronomist"
    PLATFORM = "platform"
    ADMIN = "admin"


class ApiKeyError(ValueError):
    """A key cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What is known about a key apart from its secret: who holds it and its life."""

    id: str
    name: str
    role: Role
    device_id: str | None
    farm_ids: frozenset[str]
    platform_id: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def label(self) -> str:
        """How the key is named in records it leaves (never the secret)."""
        return f"{self.name} (key {self.id})"

    def may_manage_farm(self, farm_id: str) -> bool:
        """Whether this key may provision and configure devices of ``farm_id``."""
        if self.role is Role.ADMIN:
            return True
        return self.role is Role.AGRONOMIST and farm_id in self.farm_ids


def pepper(settings: Settings) -> bytes:
    """The server's key pepper (``AGRIMATCH_API_KEY_PEPPER``); empty when unset."""
    if settings.api_key_pepper is None:
        return b""
    return settings.api_key_pepper.get_secret_value().encode("utf-8")


def create_key(
    session: Session,
    *,
    name: str,
    role: Role | str,
    pepper: bytes,
    device_id: str | None = None,
    farm_ids: Iterable[str] = (),
    platform_id: str | None = None,
    now: datetime | None = None,
    actor: str = "system",
) -> tuple[ApiKeyInfo, str]:
    """Create a key; returns its info and the token, which is stored nowhere and shown once.

    The creation is written to the audit log as done by ``actor`` (a key's
    label, or ``cli:<user>``), in the same transaction.

    Raises :class:`ApiKeyError` when the scope does not fit the role (a device
    key names exactly one device, an agronomist key at least one farm, a
    platform key one platform, an admin key nothing) or names something the
    registry does not have.
    """
    try:
        role = Role(role)
    except ValueError:
        raise ApiKeyError(
            f"unknown role {role!r}: one of {', '.join(r.value for r in Role)}"
        ) from None
    name = name.strip()
    if not name or len(name) > 200:
        raise ApiKeyError("a key needs a name of 1 to 200 characters")
    farms = sorted(set(farm_ids))
    _check_scope(session, role, device_id, farms, platform_id)
    token = new_token()
    row = ApiKey(
        id=token.key_id,
        name=name,
        role=role.value,
        device_id=device_id,
        platform_id=platform_id,
        farm_ids_json=json.dumps(farms) if role is Role.AGRONOMIST else None,
        secret_hash=hash_secret(token.secret, pepper),
        created_at=now or _utc_now(),
    )
    session.add(row)
    session.flush()
    info = _info(row)
    audit.record(
        session,
        actor=actor,
        action="key.create",
        target=info.id,
        detail=f"{info.name!r}, role {info.role.value}, scope {_scope_text(info)}",
        now=now,
    )
    return info, str(token)


def _scope_text(info: ApiKeyInfo) -> str:
    return info.device_id or info.platform_id or ", ".join(sorted(info.farm_ids)) or "all"


def _check_scope(
    session: Session,
    role: Role,
    device_id: str | None,
    farm_ids: list[str],
    platform_id: str | None,
) -> None:
    given = {
        "device": device_id is not None,
        "farm": bool(farm_ids),
        "platform": platform_id is not None,
    }
    wanted = {Role.DEVICE: "device", Role.AGRONOMIST: "farm", Role.PLATFORM: "platform"}.get(role)
    extra = [scope for scope, present in given.items() if present and scope != wanted]
    if extra:
        raise ApiKeyError(f"a {role.value} key takes no {' or '.join(extra)} scope")
    if wanted is not None and not given[wanted]:
        raise ApiKeyError(f"a {role.value} key needs a {wanted} (its scope)")
    if device_id is not None and session.get(Device, device_id) is None:
        raise ApiKeyError(f"no device {device_id!r} in the registry")
    if platform_id is not None and session.get(Platform, platform_id) is None:
        raise ApiKeyError(f"no platform {platform_id!r} in the registry")
    if farm_ids:
        known = set(session.scalars(select(Farm.id).where(Farm.id.in_(farm_ids))))
        unknown = [f for f in farm_ids if f not in known]
        if unknown:
            raise ApiKeyError(f"no farm {', '.join(map(repr, unknown))} in the registry")


def list_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
    """Keys ordered by creation (oldest first), without their hashes."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [_info(row) for row in session.scalars(query)]


def get_key(session: Session, key_id: str) -> ApiKeyInfo | None:
    """The key ``key_id``, or None."""
    row = session.get(ApiKey, key_id)
    return None if row is None else _info(row)


def revoke_key(
    session: Session, key_id: str, *, now: datetime | None = None, actor: str = "system"
) -> ApiKeyInfo:
    """Revoke a key (for good; revoking it again changes nothing). Unknown id: ApiKeyError.

    A revocation that changes something is written to the audit log as ``actor``'s.
    """
    row = session.get(ApiKey, key_id)
    if row is None:
        raise ApiKeyError(f"no key {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = now or _utc_now()
        session.flush()
        audit.record(
            session, actor=actor, action="key.revoke", target=key_id, detail=repr(row.name)
        )
    return _info(row)


def authenticate(
    session: Session, token: str, pepper: bytes, *, now: datetime | None = None
) -> ApiKeyInfo | None:
    """The live key ``token`` is, or None (malformed, unknown, wrong secret, revoked).

    Reads only: :func:`note_key_used` records the use, in a transaction of its own.
    """
    parsed = parse_token(token)
    if parsed is None:
        return None
    row = session.get(ApiKey, parsed.key_id)
    matches = secret_matches(parsed.secret, pepper, row.secret_hash if row else _DUMMY_HASH)
    if row is None or not matches or row.revoked_at is not None:
        return None
    return _info(row)


def note_key_used(session: Session, key_id: str, *, now: datetime | None = None) -> None:
    """Note that key ``key_id`` was used now, at most once per :data:`LAST_USED_RESOLUTION`.

    One conditional UPDATE with no read before it, meant as the first statement of
    its own transaction: on SQLite a transaction that reads and then writes fails
    at once when another request wrote in between, and concurrent first requests of
    a new key did exactly that; a lone write waits for the lock instead.
    """
    now = now or _utc_now()
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def _info(row: ApiKey) -> ApiKeyInfo:
    farms = frozenset(json.loads(row.farm_ids_json)) if row.farm_ids_json else frozenset()
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        device_id=row.device_id,
        farm_ids=farms,
        platform_id=row.platform_id,
        created_at=_aware(row.created_at) or row.created_at,
        revoked_at=_aware(row.revoked_at),
        last_used_at=_aware(row.last_used_at),
    )


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for DateTime(timezone=True); they were written as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _utc_now() -> datetime:
    return datetime.now(UTC)
