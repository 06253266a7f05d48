"""The node's store-and-forward buffer: bounded, oldest evicted first. Pure, no I/O.

Every pack goes through it, connected or not: the sender takes the oldest pack,
and only a broker acknowledgement (PUBACK) removes it for good. A pack whose
publish failed goes back to the front, so packs leave in sample order and
keep their original sample times when replayed after an outage.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from agrimatch.contract.telemetry import Reading


@dataclass(frozen=True, slots=True)
class Pack:
    """One sample's SenML pack, encoded when sampled (so a replay is byte-identical)."""

    sample_ms: int
    readings: tuple[Reading, ...]
    payload: bytes
    buffered: bool = False  # sampled while the link was down


class Outbox:
    """Packs waiting for their PUBACK, at most ``capacity`` of them.

    The pack in flight (taken, not yet acknowledged) is never evicted: it may
    already be at the broker. When the buffer is full, a new pack evicts the
    oldest waiting one, because fresh readings are worth more than stale ones
    to the forecasts, and evictions are counted so the loss is visible.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.evicted = 0
        self._waiting: deque[Pack] = deque()
        self._in_flight: Pack | None = None

    def __len__(self) -> int:
        """Packs not yet acknowledged, the one in flight included."""
        return len(self._waiting) + (self._in_flight is not None)

    def put(self, pack: Pack) -> int:
        """Queue ``pack``; return how many older packs were evicted to make room."""
        evicted = 0
        while len(self) >= self.capacity and self._waiting:
            self._waiting.popleft()
            evicted += 1
        self._waiting.append(pack)
        self.evicted += evicted
        return evicted

    def take(self) -> Pack | None:
        """Hand out the oldest waiting pack for publishing, or ``None`` if there is none."""
        if self._in_flight is not None:
            raise RuntimeError("a pack is already in flight")
        if not self._waiting:
            return None
        self._in_flight = self._waiting.popleft()
        return self._in_flight

    def ack(self) -> Pack:
        """The broker acknowledged the pack in flight: forget it."""
        pack = self._require_in_flight()
        self._in_flight = None
        return pack

    def nack(self) -> None:
        """Publishing the pack in flight failed: put it back at the front."""
        pack = self._require_in_flight()
        self._in_flight = None
        self._waiting.appendleft(pack)

    def _require_in_flight(self) -> Pack:
        if self._in_flight is None:
            raise RuntimeError("no pack in flight")
        return self._in_flight
