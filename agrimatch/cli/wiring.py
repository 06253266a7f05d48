"""Builds services from the settings object; shared by the CLI commands and tests."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session, sessionmaker

from agrimatch.clock import Clock, RealClock
from agrimatch.contract.telemetry import Reading, TimeLimits
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint
from agrimatch.registry import database_url, make_engine, migrate, session_factory
from agrimatch.registry.models import JobRun, JobStatus
from agrimatch.registry.repository import list_seasons
from agrimatch.scenario import load_scenario
from agrimatch.settings import Settings
from agrimatch.store import TelemetryStore
from agrimatch.store.factory import open_store
from firmware_sim import DeviceSpec, Fleet, FleetStats, plan_fleet
from firmware_sim.device import DeviceRealism
from firmware_sim.layout import plan_from_scenario
from forecasting.chain import (
    ChainOptions,
    ChainResult,
    run_chain,
    save_results,
    seasons_frame,
    split_seasons,
    training_set,
)
from forecasting.features import FEATURE_COLUMNS, HISTORY_COLUMNS, field_features
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.jobs import FORECAST, REFRESH_FEATURES, RETRAIN, JobSpec, default_job_triggers
from forecasting.metrics import quantile_metrics
from forecasting.model_store import save_model
from forecasting.telemetry_frames import daily_field_frame
from forecasting.yield_model import YieldQuantileModel
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
    specs: Sequence[DeviceSpec],
    seed: int,
    duration_s: float | None,
    stop: threading.Event,
    on_publish: PublishCallback | None = None,
    realism: bool = False,
) -> FleetStats:
    """Run a fleet until ``duration_s`` of clock time passes or ``stop`` is set.

    ``realism`` gives the devices 5G outages, faults, clock drift and battery
    sleep (:class:`firmware_sim.device.DeviceRealism`); off, they are ideal.
    """

    async def main() -> FleetStats:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        fleet = Fleet(
            specs,
            endpoint,
            clock,
            seed,
            on_publish=on_publish,
            realism=DeviceRealism() if realism else None,
        )
        return await fleet.run(duration_s, done)

    return asyncio.run(main())


def fleet_specs(
    scenario: str | None, devices: int, seed: int, interval_s: float
) -> tuple[list[DeviceSpec], int]:
    """The devices of a scenario (and its seed), or a planned fleet of ``devices``."""
    if scenario is None:
        return plan_fleet(devices, seed, interval_s), seed
    loaded = load_scenario(scenario)
    return plan_from_scenario(loaded, interval_s=interval_s), loaded.seed


def open_registry(settings: Settings) -> sessionmaker[Session]:
    """The registry database (AGRIMATCH_DATABASE_URL or SQLite in the data dir), migrated."""
    engine = make_engine(database_url(settings))
    migrate(engine)
    return session_factory(engine)


def run_forecast_job(
    settings: Settings, store: TelemetryStore, sessions: sessionmaker[Session], as_of: date
) -> tuple[JobRun, ChainResult | None]:
    """Run the forecast chain as of ``as_of`` as a recorded job; save its results."""
    started = datetime.now(UTC)
    result: ChainResult | None = None
    with sessions.begin() as session:
        run = JobRun(job="forecast", as_of=as_of, started_at=started, status="running")
        session.add(run)
    try:
        with sessions.begin() as session:
            result = run_chain(store, session, as_of, model_dir=settings.data_dir / "models")
            save_results(session, run.id, result)
        status: JobStatus = "ok"
        error: str | None = None
    except Exception as exc:  # recorded, not hidden: the run row says what failed
        logging.getLogger(__name__).exception("forecast as of %s failed", as_of)
        status, error, result = "failed", f"{type(exc).__name__}: {exc}", None
    with sessions.begin() as session:
        row = session.get(JobRun, run.id)
        assert row is not None
        row.status = status
        row.error = error
        row.ended_at = datetime.now(UTC)
        if result is not None:
            row.model_version = result.model_version
            row.metrics_json = json.dumps(result.metrics)
        session.flush()
        session.expunge(row)
    return row, result


def scheduler_jobs(
    settings: Settings, store: TelemetryStore, sessions: sessionmaker[Session]
) -> list[JobSpec]:
    """The scheduled jobs: refresh features (daily), retrain (weekly), forecast (daily)."""
    triggers = default_job_triggers()
    lookback_ms = 400 * 86_400_000

    def refresh_features(as_of: date) -> dict[str, float | str]:
        with sessions() as session:
            seasons = seasons_frame(list_seasons(session))
        history, current = split_seasons(seasons, as_of)
        end_ms = int(datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp() * 1000)
        daily = daily_field_frame(store, end_ms - lookback_ms, end_ms)
        features = field_features(
            daily,
            current[list(FIELD_SEASON_COLUMNS)],
            as_of,
            history=history[list(HISTORY_COLUMNS)],
        )
        coverage = float(features["data_coverage"].mean()) if len(features) else 0.0
        return {"fields": float(len(features)), "data_coverage_mean": coverage}

    def retrain(as_of: date) -> dict[str, float | str]:
        with sessions() as session:
            seasons = seasons_frame(list_seasons(session))
        history, _ = split_seasons(seasons, as_of)
        end_ms = int(datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp() * 1000)
        daily = daily_field_frame(store, end_ms - 4 * 365 * 86_400_000, end_ms)
        X, y = training_set(daily, history, ChainOptions().training_leads_days)
        if X.empty:
            raise ValueError(f"no harvested season to train on as of {as_of}")
        model = YieldQuantileModel(feature_columns=FEATURE_COLUMNS).fit(X, y)
        metrics = quantile_metrics(y.to_numpy(), model.predict_quantiles(X))
        manifest = save_model(model, settings.data_dir / "models", metrics=metrics)
        return {"model_version": manifest.version, "training_rows": float(len(X))}

    def forecast(as_of: date) -> dict[str, float | str]:
        run, result = run_forecast_job(settings, store, sessions, as_of)
        if result is None:
            raise RuntimeError(run.error or "forecast failed")
        return {"forecast_run": float(run.id), **result.metrics}

    return [
        JobSpec(REFRESH_FEATURES, triggers[REFRESH_FEATURES], refresh_features),
        JobSpec(RETRAIN, triggers[RETRAIN], retrain),
        JobSpec(FORECAST, triggers[FORECAST], forecast),
    ]
