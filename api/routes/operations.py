"""Operations: ``/healthz`` (alive), ``/readyz`` (dependencies reachable), ``/metrics``.

Outside ``/v1`` and without keys, as orchestrators and Prometheus expect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from agrimatch.store import StoreError, StoreUnavailable
from api.broker import BrokerUnavailable
from api.context import ApiContext
from api.crud import newest_ok_run_end
from api.deps import ContextDep
from api.errors import ProblemError, masked
from api.openapi import responses
from api.schemas.operations import CheckState, Health, Readiness

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
METRICS_EXAMPLE = """\
# HELP agrimatch_api_telemetry_readings_stored_total Readings from HTTP telemetry stored
# TYPE agrimatch_api_telemetry_readings_stored_total counter
agrimatch_api_telemetry_readings_stored_total 1234.0
# HELP agrimatch_api_dead_letters_total Dead letters of HTTP telemetry, by reason
# TYPE agrimatch_api_dead_letters_total counter
agrimatch_api_dead_letters_total{reason="out_of_range"} 3.0
# HELP agrimatch_forecast_age_seconds Seconds since the newest successful forecast run ended
# TYPE agrimatch_forecast_age_seconds gauge
agrimatch_forecast_age_seconds 5400.0
"""


@router.get(
    "/healthz",
    summary="Liveness: the process answers",
    response_model=Health,
    responses=responses({"status": "alive"}),
)
async def healthz() -> Health:
    """Alive; says nothing of the store, registry or broker (that is ``/readyz``)."""
    return Health()


@router.get(
    "/readyz",
    summary="Readiness: store, registry and broker reachable",
    response_model=Readiness,
    responses=responses(
        {
            "status": "ready",
            "checks": {"store": "ok", "registry": "ok", "broker": "not configured"},
        },
        503,
    ),
)
def readyz(context: ContextDep) -> Readiness:
    """200 when the store, the registry and (when configured) the broker answer; else 503
    naming each that does not."""
    checks: dict[str, CheckState] = {
        "store": _check("store", lambda: context.store.query_points("telemetry", 0, 1)),
        "registry": _check("registry", lambda: _ping_registry(context)),
        "broker": "not configured"
        if context.publisher is None
        else _check("broker", context.publisher.ping),
    }
    down = [name for name, state in checks.items() if state == "unavailable"]
    if down:
        raise ProblemError(
            503,
            f"not ready: {', '.join(down)} unavailable",
            slug="not-ready",
            title="Not ready",
            headers={"Retry-After": str(context.settings.api_retry_after_s)},
            checks=checks,
        )
    return Readiness(checks=checks)


def _ping_registry(context: ApiContext) -> None:
    with context.sessions() as session:
        session.execute(text("SELECT 1"))


def _check(name: str, probe: Callable[[], object]) -> CheckState:
    try:
        probe()
    except (StoreUnavailable, StoreError, SQLAlchemyError, BrokerUnavailable, OSError) as exc:
        log.warning("readiness: %s unavailable: %s", name, masked(str(exc)))
        return "unavailable"
    return "ok"


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses=responses(METRICS_EXAMPLE, media_type=PROMETHEUS_TEXT),
)
def metrics(context: ContextDep) -> Response:
    """Requests and latency by route, HTTP telemetry stored and dead-lettered by reason,
    the age of the newest successful forecast."""
    return Response(context.metrics.exposition(), media_type=PROMETHEUS_TEXT)


def forecast_age_s(context: ApiContext, job: str) -> float | None:
    """Seconds since the newest successful run of ``job`` ended, by the wall clock."""
    try:
        with context.sessions() as session:
            ended = newest_ok_run_end(session, job)
    except SQLAlchemyError as exc:
        log.warning("forecast age unknown: %s", masked(str(exc)))
        return None
    return None if ended is None else (datetime.now(UTC) - ended).total_seconds()
