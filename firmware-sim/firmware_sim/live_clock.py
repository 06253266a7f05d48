"""The clock of a live fleet: accelerated, and never ahead of the wall clock.

Ingest refuses readings stamped more than a few minutes after its own now
(``time_in_future``), as it must: a device clock hours fast is broken. A
fleet at ``--speed 60`` that starts its simulated clock at the wall clock is
past that limit within seconds, so nearly everything it sends is refused.

So a live fleet's simulated time starts in the past and is capped at the
wall clock: at ``speed`` it runs from ``start`` until it has caught up with
the wall clock, then at real time. With a known duration, the start is that
duration back, so the run ends at the moment it began and the cap is never
reached; without one, it starts :data:`DEFAULT_BACKLOG_S` back.
"""

from __future__ import annotations

import asyncio
import threading
import time

DEFAULT_BACKLOG_S = 86_400.0
"""How far back an open-ended accelerated run starts: a day of history, then live."""


class LiveClock:
    """Simulated time from ``start`` at ``speed``, capped at the wall clock.

    Implements :class:`agrimatch.clock.Clock`; ``speed`` drops to 1 once caught up.
    """

    def __init__(self, start: float, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._start = start
        self._speed = speed
        self._anchor = time.monotonic()
        self._lock = threading.Lock()

    def _accelerated(self) -> float:
        with self._lock:
            return self._start + (time.monotonic() - self._anchor) * self._speed

    @property
    def speed(self) -> float:
        return self._speed if self._accelerated() < time.time() else 1.0

    def now(self) -> float:
        return min(self._accelerated(), time.time())

    def sleep(self, seconds: float) -> None:
        target = self.now() + seconds
        while (left := target - self.now()) > 0:
            # At the current rate; a wait that crosses the catch-up point wakes early
            # and finishes at real time.
            time.sleep(left / self.speed)

    async def asleep(self, seconds: float) -> None:
        target = self.now() + seconds
        while (left := target - self.now()) > 0:
            await asyncio.sleep(left / self.speed)


def live_start(speed: float, duration_s: float | None, now: float | None = None) -> float:
    """Where a live fleet's simulated clock starts so that it never passes ``now``.

    ``duration_s`` is the run's length in simulated seconds (None: open-ended).
    """
    now = time.time() if now is None else now
    if speed <= 1.0:
        return now
    return now - (duration_s if duration_s is not None else DEFAULT_BACKLOG_S)
