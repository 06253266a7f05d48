"""The FastAPI app: ``create_app(settings)``, its lifespan and what every request shares.

The lifespan opens the configured store and the registry (migrated) once and
closes them at shutdown; a store or session factory passed in is used as is
and left open (its owner closes it), which is how tests run the app on their
own components. Routes are versioned under ``/v1``; operations (``/healthz``,
``/readyz``, ``/metrics``) are not.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from agrimatch.auth import pepper
from agrimatch.clock import Clock, make_clock
from agrimatch.contract.telemetry import TimeLimits
from agrimatch.mqtt import MqttEndpoint
from agrimatch.settings import Settings
from agrimatch.store import TelemetryStore
from agrimatch.store.factory import open_store
from api.broker import ConfigPublisher, MqttConfigPublisher
from api.context import ApiContext
from api.dashboard import router as dashboard_router
from api.errors import install_problem_handlers
from api.lookups import Lookups
from api.metrics import ApiMetrics, RequestMetricsMiddleware
from api.middleware import BodySizeLimitMiddleware
from api.openapi import install_openapi
from api.ratelimit import TokenBuckets
from api.routes import (
    audit,
    demand,
    devices,
    farms,
    fields,
    harvests,
    jobs,
    operations,
    proposals,
    recommendations,
    supply,
    telemetry,
    whatif,
)
from api.routes import forecasts as forecast_routes  # `forecasts` is create_app's service
from api.telemetry import HttpTelemetry, RecentDeadLetters
from forecasting.jobs import FORECAST
from forecasting.service import ForecastService
from ingest.pipeline import RetryPolicy, TelemetryPipeline

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
DESCRIPTION = """\
Farm telemetry in, supply forecasts and demand matching out.

Every `/v1` operation takes an API key, `Authorization: Bearer agm_<id>_<secret>`,
of a role (device, agronomist, platform, admin) and a scope. Every error is an
RFC 9457 problem (`application/problem+json`). Lists are cursor-paginated:
pass a page's `next_cursor` back as `cursor`.
"""


def create_app(
    settings: Settings,
    *,
    store: TelemetryStore | None = None,
    sessions: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
    publisher: ConfigPublisher | None = None,
    forecasts: ForecastService | None = None,
) -> FastAPI:
    """The API app on ``settings``.

    ``store`` (default: the configured one, ``AGRIMATCH_INFLUX_URL`` or the
    embedded store), ``sessions`` (default: the configured registry, migrated),
    ``clock`` (default: the settings' clock), ``publisher`` (default: MQTT on
    ``AGRIMATCH_MQTT_URL``, none when unset) and ``forecasts`` (default: a
    forecast service on the store and registry, models in the data dir) may
    be injected.
    """
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Opening them blocks (files, sockets, migrations): off the event loop.
        own_store = store is None
        the_store = store if store is not None else await run_in_threadpool(open_store, settings)
        engine: Engine | None = None
        try:
            if sessions is None:
                engine, the_sessions = await run_in_threadpool(_open_registry, settings)
            else:
                the_sessions = sessions
            context = _context(
                settings, the_store, the_sessions, clock, publisher, metrics, forecasts
            )
            app.state.context = context
            yield
        finally:
            if own_store:
                with suppress(Exception):
                    await run_in_threadpool(the_store.close)
            if engine is not None:
                engine.dispose()

    app = FastAPI(
        title="agrimatch",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    install_openapi(app)
    for router, prefix in (
        (operations.router, ""),
        (telemetry.router, API_PREFIX),
        (devices.router, API_PREFIX),
        (jobs.router, API_PREFIX),
        (audit.router, API_PREFIX),
        # Agronomists: farms, fields, harvests, forecasts, recommendations, what-ifs.
        (farms.router, API_PREFIX),
        (fields.router, API_PREFIX),
        (harvests.router, API_PREFIX),
        (forecast_routes.router, API_PREFIX),
        (recommendations.router, API_PREFIX),
        (whatif.router, API_PREFIX),
        # Platforms: demand in, supply and campaign proposals out.
        (demand.router, API_PREFIX),
        (supply.router, API_PREFIX),
        (proposals.router, API_PREFIX),
        (dashboard_router, ""),  # GET / and /dashboard/: the web page, reading /v1 like anyone
    ):
        app.include_router(router, prefix=prefix)
        for route in router.routes:
            if isinstance(route, APIRoute):
                metrics.route_templates[route.endpoint] = prefix + route.path

    # Added innermost first: CORS answers preflights before the size limit,
    # and the metrics see every request, refused ones included.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.api_max_body_bytes)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location", "Retry-After"],
            allow_credentials=False,  # keys travel in a header, never in cookies
        )
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app


def _open_registry(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    from agrimatch.registry import database_url, make_engine, migrate, session_factory

    engine = make_engine(database_url(settings))
    migrate(engine)
    return engine, session_factory(engine)


def _context(
    settings: Settings,
    store: TelemetryStore,
    sessions: sessionmaker[Session],
    clock: Clock | None,
    publisher: ConfigPublisher | None,
    metrics: ApiMetrics,
    forecasts: ForecastService | None = None,
) -> ApiContext:
    from api.routes.operations import forecast_age_s

    clock = clock or make_clock(settings.clock_start, settings.clock_speed)
    if publisher is None and settings.mqtt_url is not None:
        publisher = MqttConfigPublisher(MqttEndpoint.from_settings(settings))
    dead_letters = RecentDeadLetters()
    pipeline = TelemetryPipeline(
        store,
        dead_letters,
        clock,
        limits=TimeLimits(
            max_future_s=settings.ingest_max_future_s,
            max_age_s=settings.ingest_max_age_days * 86400.0,
        ),
        retry=RetryPolicy(settings.ingest_retry_initial_s, settings.ingest_retry_max_s),
    )
    http_telemetry = HttpTelemetry(pipeline, clock, settings.api_store_wait_s)
    context = ApiContext(
        settings=settings,
        store=store,
        sessions=sessions,
        clock=clock,
        telemetry=http_telemetry,
        dead_letters=dead_letters,
        publisher=publisher,
        key_pepper=pepper(settings),
        metrics=metrics,
        forecasts=forecasts or _forecast_service(settings, store, sessions),
        lookups=Lookups(),
        device_rates=TokenBuckets(settings.api_device_rate_per_s, settings.api_device_burst),
    )
    metrics.pipeline_snapshot = pipeline.metrics.snapshot
    metrics.records_rejected = http_telemetry.records_rejected
    metrics.packs_rejected = http_telemetry.packs_rejected
    metrics.dead_letters = dead_letters.counts
    metrics.forecast_age_s = lambda: forecast_age_s(context, FORECAST)
    return context


def _forecast_service(
    settings: Settings, store: TelemetryStore, sessions: sessionmaker[Session]
) -> ForecastService:
    """The forecast service as the CLI builds it: models in the data dir, the per-field and
    demand stages on AGRIMATCH_FORECAST_CLUSTER when it is set."""
    from forecasting.chain import ChainOptions
    from forecasting.distributed import engine_for

    options = ChainOptions(engine=engine_for(settings.forecast_cluster, settings))
    return ForecastService(store, sessions, settings.data_dir / "models", options)
