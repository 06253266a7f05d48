"""Builds services from the settings object; shared by the CLI commands and tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from agrimatch.clock import Clock, RealClock
from agrimatch.contract.telemetry import Reading, TimeLimits
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint
from agrimatch.settings import Settings
from agrimatch.store import TelemetryStore
from agrimatch.store.factory import open_store
from firmware_sim import Fleet, FleetStats, plan_fleet
from ingest.deadletter import DeadLetterSink
from ingest.mqtt_consumer import IngestOptions, MqttIngest
from ingest.pipeline import RetryPolicy, TelemetryPipeline

PublishCallback = Callable[[DeviceAddress, list[Reading]], None]


def open_configured_store(settings: Settings) -> TelemetryStore:
    return open_store(settings)


def time_limits(settings: Settings) -> TimeLimits:
    return TimeLimits(
        max_future_s=settings.ingest_max_future_s,
        max_age_s=settings.ingest_max_age_days * 86400.0,
    )


def build_ingest(
    settings: Settings,
    store: TelemetryStore,
    *,
    endpoint: MqttEndpoint | None = None,
    clock: Clock | None = None,
    client_id: str | None = None,
    shared: bool = True,
    persistent: bool = True,
) -> MqttIngest:
    """An MQTT ingest service on ``endpoint`` (default: AGRIMATCH_MQTT_URL) into ``store``."""
    endpoint = endpoint or MqttEndpoint.from_settings(settings)
    clock = clock or RealClock()
    options = IngestOptions(
        client_id=client_id or settings.mqtt_client_id,
        shared=shared,
        persistent=persistent,
        batch_size=settings.ingest_batch_size,
        linger_s=settings.ingest_linger_ms / 1000.0,
        max_inflight=settings.ingest_max_inflight,
        keepalive_s=settings.mqtt_keepalive_s,
        stats_interval_s=settings.ingest_stats_interval_s,
    )

    def pipeline(dead_letters: DeadLetterSink) -> TelemetryPipeline:
        return TelemetryPipeline(
            store,
            dead_letters,
            clock,
            limits=time_limits(settings),
            retry=RetryPolicy(settings.ingest_retry_initial_s, settings.ingest_retry_max_s),
        )

    return MqttIngest(endpoint, pipeline, options)


def run_fleet_until(
    endpoint: MqttEndpoint,
    clock: Clock,
    devices: int,
    seed: int,
    interval_s: float,
    duration_s: float | None,
    stop: threading.Event,
    on_publish: PublishCallback | None = None,
) -> FleetStats:
    """Run a planned fleet until ``duration_s`` of clock time passes or ``stop`` is set."""

    async def main() -> FleetStats:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        fleet = Fleet(
            plan_fleet(devices, seed, interval_s), endpoint, clock, seed, on_publish=on_publish
        )
        return await fleet.run(duration_s, done)

    return asyncio.run(main())
