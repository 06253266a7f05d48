"""Per-device rate limits of the HTTP telemetry path: a token bucket per device, in process.

A device may post ``rate_per_s`` packs a second on average and ``burst`` at
once (a node that was offline replays its backlog). Beyond that it gets 429
with ``Retry-After``: a device looping on a bug, or a stolen key, cannot take
the pipeline from the rest of the fleet.

In process, so with N API workers a device gets up to N times the rate;
that bounds the harm, which is the aim, without a shared store on the hot
path. A bucket untouched for ``burst / rate_per_s`` seconds is full again, so
it is dropped then (the cache's TTL): memory follows the active devices.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from cachetools import TTLCache

MAX_DEVICES = 200_000


class TokenBuckets:
    """One token bucket per key; :meth:`take` spends a token or says how long to wait."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_DEVICES,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        refill_s = burst / rate_per_s if rate_per_s > 0 else 1.0
        # (tokens, when counted); an evicted bucket was full anyway.
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(
            max_keys, refill_s, timer=clock
        )
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one of ``key``'s tokens: 0.0 if there was one, else the seconds until one."""
        if self.rate_per_s <= 0:
            return 0.0  # no limit configured
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate_per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s

    @staticmethod
    def retry_after_s(wait_s: float) -> int:
        """``Retry-After`` in whole seconds, never 0 (a client would retry at once)."""
        return max(1, math.ceil(wait_s))
