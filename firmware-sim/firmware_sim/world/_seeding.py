"""Stable random streams: a numpy Generator per key, the same in every process.

A stream is named by its parts (seed, purpose, owner, year...) hashed with
blake2b, never Python's ``hash()``, which is salted per process. Each stream is
drawn in a fixed order and size, so adding a consumer elsewhere never shifts
the numbers another one sees.
"""

from __future__ import annotations

from hashlib import blake2b

import numpy as np


def stable_seed(*parts: object) -> int:
    """A 128-bit integer that depends only on ``parts`` (their ``str`` forms, in order)."""
    digest = blake2b("|".join(str(p) for p in parts).encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")


def stream(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded by :func:`stable_seed` of ``parts``."""
    return np.random.default_rng(stable_seed(*parts))
