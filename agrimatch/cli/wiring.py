"""Builds services from the settings object; shared by the CLI commands and tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from forecasting.service import ForecastService

from agrimatch.clock import Clock, RealClock
from agrimatch.contract.telemetry import TimeLimits
from agrimatch.mqtt import MqttEndpoint
from agrimatch.settings import Settings
from agrimatch.store import TelemetryStore
from agrimatch.store.factory import open_store
from ingest.deadletter import DeadLetterSink
from ingest.mqtt_consumer import IngestOptions, MqttIngest
from ingest.pipeline import RetryPolicy, TelemetryPipeline
from ingest.places import RegisteredPlaces


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
    shared: bool | None = None,
    persistent: bool = True,
) -> MqttIngest:
    """An MQTT ingest service on ``endpoint`` (default: AGRIMATCH_MQTT_URL) into ``store``;
    ``shared`` unset follows AGRIMATCH_INGEST_SUBSCRIPTION."""
    endpoint = endpoint or MqttEndpoint.from_settings(settings)
    clock = clock or RealClock()
    options = IngestOptions(
        client_id=client_id or settings.mqtt_client_id,
        shared=settings.ingest_subscription == "shared" if shared is None else shared,
        persistent=persistent,
        batch_size=settings.ingest_batch_size,
        linger_s=settings.ingest_linger_ms / 1000.0,
        max_inflight=settings.ingest_max_inflight,
        keepalive_s=settings.mqtt_keepalive_s,
        stats_interval_s=settings.ingest_stats_interval_s,
        session_expiry_s=settings.ingest_session_expiry_s,
        connect_timeout_s=settings.ingest_connect_timeout_s,
    )

    places = registered_places(settings) if settings.ingest_check_place else None

    def pipeline(dead_letters: DeadLetterSink) -> TelemetryPipeline:
        return TelemetryPipeline(
            store,
            dead_letters,
            clock,
            limits=time_limits(settings),
            retry=RetryPolicy(settings.ingest_retry_initial_s, settings.ingest_retry_max_s),
            places=places,
        )

    return MqttIngest(endpoint, pipeline, options)


def registered_places(settings: Settings) -> RegisteredPlaces:
    """Ingest's check of each device's topic against its place in the configured registry."""
    from agrimatch.registry.devices import registered_place

    sessions = open_registry(settings)

    def lookup(device_id: str) -> tuple[str, str] | None:
        with sessions() as session:
            return registered_place(session, device_id)

    return RegisteredPlaces(lookup, ttl_s=settings.ingest_place_cache_s)


def open_registry(settings: Settings) -> sessionmaker[Session]:
    """The registry database (AGRIMATCH_DATABASE_URL or SQLite in the data dir), migrated."""
    # Imported here: ingest never needs the registry, and SQLAlchemy + Alembic cost it ~30 MB.
    from agrimatch.registry import database_url, make_engine, migrate, session_factory

    engine = make_engine(database_url(settings))
    migrate(engine)
    return session_factory(engine)


def open_forecast_service(settings: Settings) -> ForecastService:
    """The forecast service on the configured store and registry, models in the data dir;
    its per-field and demand stages on AGRIMATCH_FORECAST_CLUSTER when set (a Dask cluster,
    connected at the first forecast). The caller closes ``service.store``."""
    from forecasting.chain import ChainOptions
    from forecasting.distributed import engine_for
    from forecasting.service import ForecastService

    sessions = open_registry(settings)
    options = ChainOptions(engine=engine_for(settings.forecast_cluster, settings))
    return ForecastService(
        open_configured_store(settings), sessions, settings.data_dir / "models", options
    )
