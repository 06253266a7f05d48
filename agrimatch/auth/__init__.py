"""API keys: who may call the API, as what, over what.

Public face:
- :class:`Role`, :class:`ApiKeyInfo` — a key's role, scope and life (never its secret).
- :func:`create_key`, :func:`list_keys`, :func:`get_key`, :func:`revoke_key`,
  `authenticate`, :func:`note_key_used` — the keys in the registry database.
- :func:`pepper` — the server secret the key hashes are keyed with.

Hashing itself is pure and lives in :mod:`agrimatch.auth.tokens`.
"""

from agrimatch.auth.keys import (
    ApiKeyError,
    ApiKeyInfo,
    Role,
    authenticate,
    create_key,
    get_key,
    list_keys,
    note_key_used,
    pepper,
    revoke_key,
)

__all__ = [
    "ApiKeyError",
    "ApiKeyInfo",
    "Role",
    "authenticate",
    "create_key",
    "get_key",
    "list_keys",
    "note_key_used",
    "pepper",
    "revoke_key",
]
