"""What a key may see and change: farms by scope, platforms by key.

An agronomist key reaches the farms of its scope only. Reading a farm outside
it answers 404, exactly as a farm that does not exist, so a key cannot probe
which farms exist; changing one answers 403 naming the key's farms, since a
write that silently "does not find" a farm the caller can name would hide a
wrong key. Admin keys reach every farm. A platform key acts for its own
platform; an admin acts for the one named in ``?platform=``.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.orm import Session

from agrimatch.auth import ApiKeyInfo, Role
from agrimatch.registry.models import Farm, Field, Platform
from agrimatch.registry.repository import get_field
from api.errors import ProblemError


def forbidden(detail: str) -> ProblemError:
    """A 403 problem saying what the key's role or scope does not allow."""
    return ProblemError(403, detail, slug="forbidden", title="Forbidden")


def farm_scope(key: ApiKeyInfo) -> Collection[str] | None:
    """The farms ``key`` reaches; None for all (an admin)."""
    return None if key.role is Role.ADMIN else key.farm_ids


def scope_text(key: ApiKeyInfo) -> str:
    """How a 403 names the key's scope: ``this key's farms (a, b)``."""
    return f"this key's farms ({', '.join(sorted(key.farm_ids)) or 'none'})"


def _no_farm(farm_id: str) -> ProblemError:
    return ProblemError(404, f"no farm {farm_id!r}")


def farm_for_read(session: Session, key: ApiKeyInfo, farm_id: str) -> Farm:
    """The farm, if the key reaches it; else 404 (outside the scope reads as absent)."""
    farm = session.get(Farm, farm_id) if key.may_manage_farm(farm_id) else None
    if farm is None:
        raise _no_farm(farm_id)
    return farm


def check_writes_farm(key: ApiKeyInfo, farm_id: str) -> None:
    """403 naming the key's farms when it may not change ``farm_id``."""
    if not key.may_manage_farm(farm_id):
        raise forbidden(f"{scope_text(key)} do not include {farm_id!r}")


def farm_for_write(session: Session, key: ApiKeyInfo, farm_id: str) -> Farm:
    """The farm, if the key may change it: 403 outside its scope, 404 if absent."""
    check_writes_farm(key, farm_id)
    farm = session.get(Farm, farm_id)
    if farm is None:
        raise _no_farm(farm_id)
    return farm


def field_for_read(session: Session, key: ApiKeyInfo, farm_id: str, field_id: str) -> Field:
    """The field of a farm the key reaches; 404 otherwise."""
    farm_for_read(session, key, farm_id)
    return _field_or_404(session, farm_id, field_id)


def field_for_write(session: Session, key: ApiKeyInfo, farm_id: str, field_id: str) -> Field:
    """The field of a farm the key may change: 403 outside its scope, 404 if absent."""
    farm_for_write(session, key, farm_id)
    return _field_or_404(session, farm_id, field_id)


def _field_or_404(session: Session, farm_id: str, field_id: str) -> Field:
    field = get_field(session, farm_id, field_id)
    if field is None:
        raise ProblemError(404, f"no field {field_id!r} on farm {farm_id!r}")
    return field


def acting_platform_id(session: Session, key: ApiKeyInfo, platform: str | None) -> str:
    """The platform a platform route acts for: the key's own, or an admin's ``?platform=``.

    A platform key naming another platform is refused (403); an admin must
    name one (422) that exists (404).
    """
    if key.role is Role.PLATFORM:
        assert key.platform_id is not None  # a platform key's scope
        if platform is not None and platform != key.platform_id:
            raise forbidden(f"this key acts for platform {key.platform_id!r} only")
        return key.platform_id
    if platform is None:
        raise ProblemError(
            422,
            "an admin key names the platform to act for: ?platform=<id>",
            slug="validation",
            title="Request validation failed",
            errors=[
                {
                    "in": "query",
                    "field": "platform",
                    "pointer": None,
                    "detail": "required with an admin key",
                }
            ],
        )
    if session.get(Platform, platform) is None:
        raise ProblemError(404, f"no platform {platform!r}")
    return platform
