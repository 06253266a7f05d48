"""Ingest counters, readable in-process and logged periodically."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    messages_received: int
    messages_acked: int
    messages_dead_lettered: int
    dead_letters: int
    records_rejected: int
    readings_stored: int
    points_written: int
    store_retries: int
    batches: int
    batch_latency_ms_last: float
    batch_latency_ms_max: float

    def as_dict(self) -> dict[str, float]:
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
        }
        self._latency_last = 0.0
        self._latency_max = 0.0

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                self._counts[name] += value

    def observe_batch(self, latency_ms: float) -> None:
        with self._lock:
            self._counts["batches"] += 1
            self._latency_last = latency_ms
            self._latency_max = max(self._latency_max, latency_ms)

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(
                **self._counts,
                batch_latency_ms_last=round(self._latency_last, 1),
                batch_latency_ms_max=round(self._latency_max, 1),
            )
