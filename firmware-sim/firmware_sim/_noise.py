"""Counter-based randomness: a random number is a pure function of its key.

Signals must be the same whatever process computes them and in whatever order
(a fleet split over processes, a replay, a test), so nothing here keeps state:
every draw hashes ``(seed, stream, owner, index)``. blake2b is stable across
processes and platforms, unlike ``hash()``.
"""

from __future__ import annotations

import math
from hashlib import blake2b
from statistics import NormalDist

_STANDARD_NORMAL = NormalDist()
_TWO_TO_64 = float(2**64)


def uniform(seed: int, stream: str, owner: str, index: int) -> float:
    """A uniform draw in the open interval (0, 1) for the key."""
    digest = blake2b(f"{seed}|{stream}|{owner}|{index}".encode(), digest_size=8).digest()
    # +0.5 keeps the draw off 0 and 1, so inverse CDFs and logs stay finite.
    return (int.from_bytes(digest, "big") + 0.5) / _TWO_TO_64


def normal(seed: int, stream: str, owner: str, index: int) -> float:
    """A standard normal draw for the key."""
    return _STANDARD_NORMAL.inv_cdf(uniform(seed, stream, owner, index))


def exponential(seed: int, stream: str, owner: str, index: int) -> float:
    """An exponential draw with mean 1 for the key."""
    return -math.log(1.0 - uniform(seed, stream, owner, index))


def smooth(seed: int, stream: str, owner: str, t_s: float, period_s: float) -> float:
    """Slowly varying noise (about standard normal) with a correlation time of ``period_s``.

    Value noise: normal draws at knots every ``period_s``, blended with a
    cosine ramp, so the value is continuous in time and the same for any
    sampling interval.
    """
    position = t_s / period_s
    knot = math.floor(position)
    frac = position - knot
    weight = (1.0 - math.cos(math.pi * frac)) / 2.0
    left = normal(seed, stream, owner, knot)
    right = normal(seed, stream, owner, knot + 1)
    # Blending two independent normals shrinks the variance mid-way; rescale it back.
    scale = math.hypot(1.0 - weight, weight)
    return ((1.0 - weight) * left + weight * right) / scale
