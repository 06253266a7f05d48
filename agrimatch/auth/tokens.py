"""API key tokens: making, parsing and hashing them. Pure: no database, no I/O.

A key reads ``agm_{id}_{secret}``: ``id`` is 12 hex digits, public, and finds
the key's row; ``secret`` is 32 random bytes (base64url), shown once at
creation and stored only as HMAC-SHA256 keyed with the server's pepper.

Why a keyed hash and not argon2: the secret is random with 256 bits of
entropy, so nothing can be guessed and a slow hash buys nothing, while every
device request would pay for it. The pepper (a server secret outside the
database) means a stolen registry dump alone cannot even check a key.
Verification compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "agm"
KEY_ID_BYTES = 6  # 12 hex digits: ids are looked up, not guessed against
SECRET_BYTES = 32
_TOKEN_RE = re.compile(
    rf"{TOKEN_PREFIX}_([0-9a-f]{{{2 * KEY_ID_BYTES}}})_([A-Za-z0-9_-]{{20,100}})"
)


@dataclass(frozen=True, slots=True)
class KeyToken:
    """A key as its holder presents it: public id plus secret."""

    key_id: str
    secret: str

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}_{self.key_id}_{self.secret}"

    def __repr__(self) -> str:  # a token must never reach a log through repr()
        return f"KeyToken(key_id={self.key_id!r}, secret='***')"


def new_token() -> KeyToken:
    """A fresh random key."""
    return KeyToken(secrets.token_hex(KEY_ID_BYTES), secrets.token_urlsafe(SECRET_BYTES))


def parse_token(text: str) -> KeyToken | None:
    """The key in ``text`` (``agm_{id}_{secret}``), or None if it is not shaped like one."""
    match = _TOKEN_RE.fullmatch(text.strip())
    if match is None:
        return None
    return KeyToken(match.group(1), match.group(2))


def hash_secret(secret: str, pepper: bytes) -> str:
    """HMAC-SHA256 of ``secret`` keyed with ``pepper``, as 64 hex digits."""
    return hmac.new(pepper, secret.encode("utf-8"), hashlib.sha256).hexdigest()


def secret_matches(secret: str, pepper: bytes, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``; constant time in the secret."""
    return hmac.compare_digest(hash_secret(secret, pepper), stored_hash)
