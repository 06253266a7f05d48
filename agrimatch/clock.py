"""The one notion of "now": real time, or a simulated, accelerated time.

Every component asks a :class:`Clock` rather than ``time.time()``, so the
simulator and the demo can run a season in minutes and the forecaster can be
backtested as of any date.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Source of the current time in UTC epoch seconds."""

    @property
    def speed(self) -> float:
        """Simulated seconds per real second (1.0 for real time)."""
        ...

    def now(self) -> float:
        """Current time, UTC epoch seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of clock time."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Await ``seconds`` of clock time."""
        ...


class RealClock:
    """Wall-clock time."""

    speed = 1.0

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimulatedClock:
    """Time that starts at ``start`` and runs ``speed`` times faster than real time."""

    def __init__(self, start: float, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._start = start
        self._speed = speed
        self._anchor = time.monotonic()
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        with self._lock:
            return self._start + (time.monotonic() - self._anchor) * self._speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self._speed)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)


def make_clock(start: datetime | None, speed: float) -> Clock:
    """Real clock for real time, simulated clock for a start date or a speed-up."""
    if start is None and speed == 1.0:
        return RealClock()
    begin = start.timestamp() if start is not None else time.time()
    return SimulatedClock(begin, speed)


def to_datetime(epoch_s: float) -> datetime:
    """UTC datetime for epoch seconds."""
    return datetime.fromtimestamp(epoch_s, tz=UTC)
