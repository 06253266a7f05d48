"""Prometheus metrics of the API: requests, HTTP telemetry, dead letters, forecast age.

Each app has a registry of its own (not the process-global one), so several
apps in one process (tests) do not collide. Counters the pipeline and the
dead-letter sink keep already are read at scrape time, not copied.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.metrics import MetricsSnapshot

UNMATCHED_ROUTE = "<unmatched>"  # one label for every unknown path: bounded cardinality
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _TelemetryCollector(Collector):
    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        snapshot = self._metrics.pipeline_snapshot()
        if snapshot is not None:
            for name, help_text, value in (
                (
                    "readings_stored",
                    "Readings from HTTP telemetry stored",
                    snapshot.readings_stored,
                ),
                (
                    "points_written",
                    "Points HTTP telemetry wrote to the store",
                    snapshot.points_written,
                ),
                (
                    "store_retries",
                    "Store writes retried while it was unavailable",
                    snapshot.store_retries,
                ),
            ):
                yield CounterMetricFamily(f"agrimatch_api_telemetry_{name}", help_text, value=value)
        by_reason = (
            (
                "agrimatch_api_telemetry_records_rejected",
                "Records of HTTP packs rejected, by reason",
                self._metrics.records_rejected(),
            ),
            (
                "agrimatch_api_telemetry_packs_rejected",
                "Whole HTTP packs rejected, by reason",
                self._metrics.packs_rejected(),
            ),
            (
                "agrimatch_api_dead_letters",
                "Dead letters of HTTP telemetry, by reason",
                self._metrics.dead_letters(),
            ),
        )
        for name, help_text, counts in by_reason:
            family = CounterMetricFamily(name, help_text, labels=["reason"])
            for reason, count in sorted(counts.items()):
                family.add_metric([reason], count)
            yield family
        age = self._metrics.forecast_age_s()
        family_age = GaugeMetricFamily(
            "agrimatch_forecast_age_seconds",
            "Seconds since the newest successful forecast run ended (absent: none yet)",
        )
        if age is not None:
            family_age.add_metric([], age)
        yield family_age


class ApiMetrics:
    """The app's metrics registry; sources are plugged in once the lifespan opened them."""

    def __init__(self) -> None:
        # No *_created series: they double the exposition and nobody graphs them.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "agrimatch_api_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "agrimatch_api_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        # Endpoint -> full path template ("/v1/devices/{device_id}"), filled as
        # routers are included: the route a router hands on may lack its prefix.
        self.route_templates: dict[Any, str] = {}
        self.pipeline_snapshot: Callable[[], MetricsSnapshot | None] = lambda: None
        self.records_rejected: Callable[[], Mapping[str, int]] = dict
        self.packs_rejected: Callable[[], Mapping[str, int]] = dict
        self.dead_letters: Callable[[], Mapping[str, int]] = dict
        self.forecast_age_s: Callable[[], float | None] = lambda: None
        self.registry.register(_TelemetryCollector(self))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition format (what /metrics serves)."""
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by its route template (``/v1/devices/{device_id}``)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = self._template(scope)
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        # The router writes the matched endpoint into the shared scope.
        endpoint = scope.get("endpoint")
        return self.metrics.route_templates.get(endpoint, UNMATCHED_ROUTE)
