"""Ingest's counters and liveness in Prometheus' text format, on a port of its own.

Off unless a port is given (``AGRIMATCH_INGEST_METRICS_PORT``). Everything is
read from :class:`~ingest.metrics.IngestMetrics` at scrape time, not copied.
The alert that matters, "received but not stored", reads::

    agrimatch_ingest_messages_received_total > agrimatch_ingest_messages_acked_total
      and time() - agrimatch_ingest_last_acked_timestamp_seconds > 300

(acknowledged = stored or dead-lettered); ``agrimatch_ingest_connected == 0``
for minutes says the broker is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ingest.metrics import IngestMetrics

_COUNTERS = (
    ("messages_received", "Messages received from the broker"),
    ("messages_acked", "Messages acknowledged to the broker (stored or dead-lettered)"),
    ("messages_dead_lettered", "Whole messages refused and dead-lettered"),
    ("records_rejected", "Records of accepted packs refused (dead-lettered with their pack)"),
    ("readings_stored", "Readings written to the store"),
    ("points_written", "Points written to the store"),
    ("store_retries", "Store writes retried while the store was unavailable"),
    ("batches", "Batches stored and acknowledged"),
    ("connects", "Connections to the broker made"),
    ("connect_failures", "Connection attempts that failed (unreachable or refused)"),
    ("disconnects", "Connections to the broker lost"),
)
_TIMES = (
    ("last_received", "When the last message arrived (UTC epoch seconds)"),
    ("last_stored", "When points were last written to the store (UTC epoch seconds)"),
    ("last_acked", "When messages were last acknowledged (UTC epoch seconds)"),
)


class IngestCollector(Collector):
    """Yields the ingest metric families from the live counters at each scrape."""

    def __init__(
        self,
        metrics: IngestMetrics,
        queue_depth: Callable[[], int] = lambda: 0,
        writer_alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self._metrics = metrics
        self._queue_depth = queue_depth
        self._writer_alive = writer_alive

    def collect(self) -> Iterator[Any]:
        snap = self._metrics.snapshot()
        for name, help_text in _COUNTERS:
            yield CounterMetricFamily(
                f"agrimatch_ingest_{name}", help_text, value=getattr(snap, name)
            )
        letters = CounterMetricFamily(
            "agrimatch_ingest_dead_letters", "Dead letters published, by reason", labels=["reason"]
        )
        for reason, count in sorted(snap.dead_letters_by_reason.items()):
            letters.add_metric([reason], count)
        yield letters
        yield GaugeMetricFamily(
            "agrimatch_ingest_connected",
            "1 while connected to the broker",
            value=1 if snap.connected else 0,
        )
        yield GaugeMetricFamily(
            "agrimatch_ingest_writer_alive",
            "1 while the writer thread runs (0: the process is about to exit)",
            value=1 if self._writer_alive() else 0,
        )
        yield GaugeMetricFamily(
            "agrimatch_ingest_queue_depth",
            "Messages received and not yet taken by the writer",
            value=self._queue_depth(),
        )
        yield GaugeMetricFamily(
            "agrimatch_ingest_batch_latency_seconds_max",
            "Longest batch so far, from decoding to acknowledgement",
            value=snap.batch_latency_ms_max / 1000,
        )
        for name, help_text in _TIMES:
            family = GaugeMetricFamily(f"agrimatch_ingest_{name}_timestamp_seconds", help_text)
            value = getattr(snap, f"{name}_at")
            if value is not None:  # absent until it first happens
                family.add_metric([], value)
            yield family


class MetricsServer:
    """The HTTP server of the exposition; :meth:`close` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(collector: IngestCollector, host: str, port: int) -> MetricsServer:
    """Serve ``collector`` at ``http://host:port/metrics`` (port 0: a free one) in a thread."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
