"""Operations: liveness, readiness naming what is down, Prometheus metrics, job runs, CORS."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.registry.models import JobRun
from agrimatch.store.embedded import EmbeddedStore
from api import create_app
from tests.api.conftest import DEVICE_A, api_settings, bearer, pack


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


def _run(job: str, status: str, ended_ago: timedelta | None) -> JobRun:
    now = datetime.now(UTC)
    return JobRun(
        job=job,
        as_of=now.date(),
        started_at=now - (ended_ago or timedelta()) - timedelta(minutes=2),
        ended_at=None if ended_ago is None else now - ended_ago,
        status=status,
        metrics_json='{"fields": 3}' if status == "ok" else None,
        error="ChainError: no fields" if status == "failed" else None,
    )


def test_the_process_answers_alive(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}


def test_ready_when_store_and_registry_answer(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "store": "ok",
        "registry": "ok",
        "broker": "not configured",
    }


def test_not_ready_names_the_registry_when_it_cannot_be_opened(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'registry.sqlite3'}")
    app = create_app(api_settings(tmp_path), store=store, sessions=sessionmaker(engine))
    with TestClient(app) as client:
        response = client.get("/readyz")
        keyed = client.get("/v1/jobs", headers=bearer("agm_000000000000_" + "x" * 43))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "not ready: registry unavailable"
    assert response.json()["checks"]["store"] == "ok"
    # A request that needs the registry is a 503 to retry, not a 500 or a 401.
    assert keyed.status_code == 503 and "retry-after" in keyed.headers
    assert keyed.json()["type"] == "urn:agrimatch:problem:registry-unavailable"
    engine.dispose()


def test_metrics_count_requests_by_route_template_and_telemetry_by_reason(
    client: TestClient, tokens: dict[str, str]
) -> None:
    for _ in range(2):
        client.get(f"/v1/devices/{DEVICE_A}/config", headers=bearer(tokens["admin"]))
    client.post(
        "/v1/telemetry",
        content=pack(DEVICE_A, air_temp=21.0, air_rh=150.0),
        headers=bearer(tokens["device_a"]),
    )
    client.get("/no/such/path")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/v1/devices/{device_id}/config"
    assert (
        _metric(text, "agrimatch_api_requests_total", method="GET", route=route, status="200") == 2
    )
    assert (
        _metric(text, "agrimatch_api_request_duration_seconds_count", method="GET", route=route)
        == 2
    )
    assert (
        _metric(
            text, "agrimatch_api_requests_total", method="GET", route="<unmatched>", status="404"
        )
        == 1
    )
    assert _metric(text, "agrimatch_api_telemetry_readings_stored_total") == 1
    assert (
        _metric(text, "agrimatch_api_telemetry_records_rejected_total", reason="out_of_range") == 1
    )
    assert _metric(text, "agrimatch_api_dead_letters_total", reason="out_of_range") == 1
    assert _metric(text, "agrimatch_forecast_age_seconds") is None  # no forecast run yet


def test_forecast_age_is_that_of_the_newest_successful_forecast(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        session.add(_run("forecast", "ok", timedelta(hours=3)))
        session.add(_run("forecast", "ok", timedelta(hours=1)))
        session.add(_run("forecast", "failed", timedelta(minutes=5)))
        session.add(_run("retrain", "ok", timedelta(minutes=1)))
    age = _metric(client.get("/metrics").text, "agrimatch_forecast_age_seconds")
    assert age is not None and 3600 <= age < 3660


def test_job_runs_are_listed_newest_first_a_page_at_a_time(
    client: TestClient, tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        for hours in (3, 2, 1):
            session.add(_run("forecast", "ok", timedelta(hours=hours)))
        session.add(_run("retrain", "failed", timedelta(minutes=1)))
    first = client.get("/v1/jobs", params={"limit": 2}, headers=bearer(tokens["admin"])).json()
    assert [(r["job"], r["status"]) for r in first["items"]] == [
        ("retrain", "failed"),
        ("forecast", "ok"),
    ]
    assert first["items"][0]["error"] == "ChainError: no fields"
    second = client.get(
        "/v1/jobs",
        params={"limit": 2, "cursor": first["next_cursor"]},
        headers=bearer(tokens["admin"]),
    ).json()
    assert len(second["items"]) == 2 and second["next_cursor"] is None
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    only = client.get("/v1/jobs?job=retrain", headers=bearer(tokens["admin"])).json()
    assert [r["job"] for r in only["items"]] == ["retrain"]
    assert second["items"][0]["metrics"] == {"fields": 3}


def test_cors_allows_only_the_configured_origins(
    tmp_path: Path, store: EmbeddedStore, sessions: sessionmaker[Session]
) -> None:
    preflight = {
        "Origin": "https://dash.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    closed = create_app(api_settings(tmp_path), store=store, sessions=sessions)
    with TestClient(closed) as client:
        response = client.options("/v1/jobs", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    opened = create_app(
        api_settings(tmp_path, api_cors_origins=["https://dash.example"]),
        store=store,
        sessions=sessions,
    )
    with TestClient(opened) as client:
        response = client.options("/v1/jobs", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://dash.example"
        other = client.options("/v1/jobs", headers=preflight | {"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
