"""Random processes in time that are pure functions of their key: no state, any order.

Two shapes the device models need:

* :func:`gauss_markov`: a stationary AR(1) (discretised Gauss-Markov) process
  with unit variance and a correlation time, for slow fading and interference;
* :func:`episode_at` / :func:`next_episode`: the "down" periods of an
  alternating renewal process (exponential time between episodes, lognormal
  episode durations), for coverage outages and stuck or drifting sensors.

Both are built from :mod:`firmware_sim._noise` draws keyed by ``(seed, stream,
owner, index)`` and memoised per block, so a value at ``t`` is the same in
any process, whatever was asked before. The memo caches change nothing about
the results.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache

from firmware_sim import _noise

# --- Gauss-Markov ------------------------------------------------------------------------

KNOTS_PER_BLOCK = 512
# AR(1) memory fades as rho**n = exp(-n * step / tau); after 7 correlation times a
# block's warm-up has forgotten its start to 1e-3, so neighbouring blocks agree.
WARMUP_CORRELATION_TIMES = 7.0
KNOTS_PER_CORRELATION_TIME = 8


@lru_cache(maxsize=1 << 14)
def _ar1_block(
    seed: int, stream: str, owner: str, block: int, correlation_s: float, step_s: float
) -> tuple[float, ...]:
    """AR(1) knots ``block * KNOTS_PER_BLOCK ..`` (one more at the end, for interpolation)."""
    rho = math.exp(-step_s / correlation_s)
    innovation = math.sqrt(1.0 - rho * rho)
    warmup = math.ceil(WARMUP_CORRELATION_TIMES * correlation_s / step_s)
    first = block * KNOTS_PER_BLOCK - warmup
    # Starting from a stationary draw keeps every knot exactly N(0, 1).
    x = _noise.normal(seed, stream, owner, first)
    knots = []
    for k in range(first + 1, (block + 1) * KNOTS_PER_BLOCK + 1):
        x = rho * x + innovation * _noise.normal(seed, stream, owner, k)
        if k >= block * KNOTS_PER_BLOCK:
            knots.append(x)
    return tuple(knots)


def gauss_markov(seed: int, stream: str, owner: str, t_s: float, correlation_s: float) -> float:
    """A stationary Gauss-Markov process at ``t_s``: standard normal, autocorrelation
    ``exp(-|dt| / correlation_s)``.

    Sampled as AR(1) on knots every ``correlation_s / 8`` and interpolated
    linearly between them (rescaled so the variance stays 1), so the value is
    continuous in time and does not depend on how often it is read.
    """
    if not correlation_s > 0:
        raise ValueError("correlation_s must be positive")
    step_s = correlation_s / KNOTS_PER_CORRELATION_TIME
    position = t_s / step_s
    knot = math.floor(position)
    weight = position - knot
    block, index = divmod(knot, KNOTS_PER_BLOCK)
    knots = _ar1_block(seed, stream, owner, block, correlation_s, step_s)
    left, right = knots[index], knots[index + 1]
    rho = math.exp(-1.0 / KNOTS_PER_CORRELATION_TIME)
    scale = math.sqrt((1 - weight) ** 2 + weight**2 + 2 * weight * (1 - weight) * rho)
    return ((1 - weight) * left + weight * right) / scale


# --- alternating renewal -----------------------------------------------------------------

BLOCK_S = 365 * 86_400.0  # episodes are generated a year at a time
HORIZON_BLOCKS = 3  # how far ahead next_episode looks


@dataclass(frozen=True, slots=True)
class DurationLaw:
    """Lognormal episode durations: ``median_s * exp(sigma * N(0, 1))`` clipped to [min, max]."""

    median_s: float
    sigma: float
    min_s: float
    max_s: float

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.median_s <= self.max_s <= BLOCK_S:
            raise ValueError("durations need 0 < min <= median <= max <= one year")
        if self.sigma < 0:
            raise ValueError("sigma must not be negative")

    def draw(self, z: float) -> float:
        """The duration for a standard normal draw ``z``."""
        return min(self.max_s, max(self.min_s, self.median_s * math.exp(self.sigma * z)))

    @property
    def mean_s(self) -> float:
        """Mean duration, ignoring the clipping."""
        return self.median_s * math.exp(self.sigma**2 / 2)


@dataclass(frozen=True, slots=True)
class Episode:
    """One down period, ``[start_s, end_s)``."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def covers(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


@lru_cache(maxsize=1 << 16)
def episodes_in_block(
    seed: int, stream: str, owner: str, block: int, rate_per_s: float, law: DurationLaw
) -> tuple[Episode, ...]:
    """The episodes starting in year-block ``block``, in time order.

    The time between one episode's end and the next start is exponential with
    mean ``1 / rate_per_s`` (memoryless, so each block can start afresh at its
    beginning and still be stationary); an episode may run into the next block.
    """
    if rate_per_s <= 0:
        return ()
    t = block * BLOCK_S
    end = t + BLOCK_S
    episodes: list[Episode] = []
    n = 0
    while True:
        t += _noise.exponential(seed, f"{stream}-up", owner, block * 1_000_003 + n) / rate_per_s
        if t >= end:
            return tuple(episodes)
        duration = law.draw(_noise.normal(seed, f"{stream}-down", owner, block * 1_000_003 + n))
        episodes.append(Episode(t, t + duration))
        t += duration
        n += 1


def episode_at(
    seed: int, stream: str, owner: str, t_s: float, rate_per_s: float, law: DurationLaw
) -> Episode | None:
    """The episode covering ``t_s`` (the latest started, if two overlap), or None."""
    if rate_per_s <= 0:
        return None
    block = math.floor(t_s / BLOCK_S)
    episodes = episodes_in_block(seed, stream, owner, block, rate_per_s, law)
    i = bisect.bisect_right([e.start_s for e in episodes], t_s)
    if i > 0 and episodes[i - 1].covers(t_s):
        return episodes[i - 1]
    # An episode of the previous block may still be running (durations are < a block).
    earlier = episodes_in_block(seed, stream, owner, block - 1, rate_per_s, law)
    if earlier and earlier[-1].covers(t_s):
        return earlier[-1]
    return None


def next_episode(
    seed: int, stream: str, owner: str, after_s: float, rate_per_s: float, law: DurationLaw
) -> Episode | None:
    """The first episode that ends after ``after_s`` (it may have begun already).

    Looks ``HORIZON_BLOCKS`` years ahead; None means nothing within that horizon.
    """
    if rate_per_s <= 0:
        return None
    block = math.floor(after_s / BLOCK_S)
    earlier = episodes_in_block(seed, stream, owner, block - 1, rate_per_s, law)
    candidates = [e for e in earlier[-1:] if e.end_s > after_s]
    for b in range(block, block + HORIZON_BLOCKS):
        found = [
            e
            for e in episodes_in_block(seed, stream, owner, b, rate_per_s, law)
            if e.end_s > after_s
        ]
        if found or candidates:
            return min([*candidates, *found[:1]], key=lambda e: e.start_s)
    return None
