"""Ingest counters, readable in-process, logged periodically and scraped by Prometheus.

Besides counts, they keep the connection state and the wall-clock times of
the last message received, stored and acknowledged: "received but not
stored" is the failure an operator must be able to alert on, and it shows as
a receive time moving on while the store time stands still.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """The counters at one moment; times are UTC epoch seconds (None: never yet)."""

    messages_received: int
    messages_acked: int
    messages_dead_lettered: int  # whole messages refused
    dead_letters: int  # letters sent (a message with some bad records gives one too)
    records_rejected: int
    readings_stored: int
    points_written: int
    store_retries: int
    batches: int
    batch_latency_ms_last: float
    batch_latency_ms_max: float
    connected: bool = False
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    dead_letters_by_reason: Mapping[str, int] = field(default_factory=dict)
    last_received_at: float | None = None
    last_stored_at: float | None = None
    last_acked_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class IngestMetrics:
    """Thread-safe counters; the pipeline and the MQTT consumer both update them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {
            "messages_received": 0,
            "messages_acked": 0,
            "messages_dead_lettered": 0,
            "dead_letters": 0,
            "records_rejected": 0,
            "readings_stored": 0,
            "points_written": 0,
            "store_retries": 0,
            "batches": 0,
            "connects": 0,
            "connect_failures": 0,
            "disconnects": 0,
        }
        self._by_reason: Counter[str] = Counter()
        self._latency_last = 0.0
        self._latency_max = 0.0
        self._connected = False
        self._last_received_at: float | None = None
        self._last_stored_at: float | None = None
        self._last_acked_at: float | None = None

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                self._counts[name] += value

    def observe_batch(self, latency_ms: float) -> None:
        with self._lock:
            self._counts["batches"] += 1
            self._latency_last = latency_ms
            self._latency_max = max(self._latency_max, latency_ms)

    def received(self, count: int = 1) -> None:
        """``count`` messages arrived from the transport (not yet stored)."""
        now = time.time()
        with self._lock:
            self._counts["messages_received"] += count
            self._last_received_at = now

    def stored(self, points: int) -> None:
        """A write of ``points`` points succeeded."""
        now = time.time()
        with self._lock:
            self._counts["points_written"] += points
            self._last_stored_at = now

    def acked(self, count: int) -> None:
        """``count`` messages were acknowledged (stored or dead-lettered)."""
        now = time.time()
        with self._lock:
            self._counts["messages_acked"] += count
            self._last_acked_at = now

    def dead_lettered(self, reasons: Iterable[str]) -> None:
        """Dead letters were accepted by the sink, one per reason given."""
        with self._lock:
            for reason in reasons:
                self._counts["dead_letters"] += 1
                self._by_reason[reason] += 1

    def set_connected(self, connected: bool) -> None:
        """The broker connection came up (counted as a connect) or went down."""
        with self._lock:
            if connected:
                self._counts["connects"] += 1
            elif self._connected:
                self._counts["disconnects"] += 1
            self._connected = connected

    def connect_failed(self) -> None:
        """A connection attempt failed (unreachable, or refused by the broker)."""
        with self._lock:
            self._counts["connect_failures"] += 1

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(
                **self._counts,
                batch_latency_ms_last=round(self._latency_last, 1),
                batch_latency_ms_max=round(self._latency_max, 1),
                connected=self._connected,
                dead_letters_by_reason=dict(self._by_reason),
                last_received_at=self._last_received_at,
                last_stored_at=self._last_stored_at,
                last_acked_at=self._last_acked_at,
            )
