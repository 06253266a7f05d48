"""API keys: no key, a wrong key, a revoked key, the wrong role, another device's pack."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.auth import (
    ApiKeyError,
    Role,
    authenticate,
    create_key,
    get_key,
    note_key_used,
    revoke_key,
)
from agrimatch.registry.models import ApiKey
from agrimatch.store.embedded import EmbeddedStore
from tests.api.conftest import DEVICE_A, DEVICE_B, PEPPER, bearer, pack

PROBLEM_JSON = "application/problem+json"


def test_a_request_without_a_key_is_refused_as_unauthorized(client: TestClient) -> None:
    response = client.get("/v1/jobs")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["instance"] == "/v1/jobs"
    assert "API key is required" in body["detail"]


@pytest.mark.parametrize(
    "token",
    ["nonsense", "agm_000000000000_" + "x" * 43, "Basic dXNlcjpwYXNz"],
    ids=["malformed", "unknown", "not-a-key"],
)
def test_a_key_that_is_not_valid_is_refused_as_unauthorized(
    client: TestClient, tokens: dict[str, str], token: str
) -> None:
    response = client.get("/v1/jobs", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON


def test_a_key_with_a_wrong_secret_is_refused(client: TestClient, tokens: dict[str, str]) -> None:
    key_id = tokens["admin"].split("_")[1]
    response = client.get("/v1/jobs", headers=bearer(f"agm_{key_id}_{'A' * 43}"))
    assert response.status_code == 401


def test_a_revoked_key_is_refused_as_unauthorized(
    client: TestClient, tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    assert client.get("/v1/jobs", headers=bearer(tokens["admin"])).status_code == 200
    with sessions.begin() as session:
        revoke_key(session, tokens["admin"].split("_")[1])
    response = client.get("/v1/jobs", headers=bearer(tokens["admin"]))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize("holder", ["device_a", "agronomist", "platform"])
def test_a_key_of_the_wrong_role_is_forbidden(
    client: TestClient, tokens: dict[str, str], holder: str
) -> None:
    response = client.get("/v1/jobs", headers=bearer(tokens[holder]))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "role admin" in response.json()["detail"]


def test_only_device_keys_post_telemetry(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.post(
        "/v1/telemetry", content=pack(DEVICE_A, air_temp=20.0), headers=bearer(tokens["admin"])
    )
    assert response.status_code == 403


def test_device_a_cannot_post_as_device_b(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    response = client.post(
        "/v1/telemetry", content=pack(DEVICE_B, air_temp=20.0), headers=bearer(tokens["device_a"])
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["reason"] == "device_mismatch"
    assert store.query_points("telemetry", 0, 2**62) == []


def test_a_key_is_stored_only_as_a_keyed_hash(
    tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    token = tokens["device_a"]
    _, key_id, secret = token.split("_", 2)
    with sessions() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.id == key_id)).one()
        stored = [str(getattr(row, c.name)) for c in ApiKey.__table__.columns]
    assert all(secret not in value for value in stored)
    assert len(row.secret_hash) == 64


def test_a_key_hashed_under_another_pepper_does_not_authenticate(
    tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        assert authenticate(session, tokens["admin"], PEPPER.encode()) is not None
        assert authenticate(session, tokens["admin"], b"another pepper") is None


def test_authenticating_notes_when_a_key_was_last_used(
    tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        key = authenticate(session, tokens["platform"], PEPPER.encode())
    assert key is not None and key.role is Role.PLATFORM and key.platform_id == "pdd"
    with sessions.begin() as session:
        note_key_used(session, key.id)
    with sessions() as session:
        noted = get_key(session, key.id)
    assert noted is not None and noted.last_used_at is not None


def test_a_new_keys_first_requests_in_parallel_are_all_served(app, tokens) -> None:
    # Each first use notes itself; on SQLite a read-then-write transaction per request
    # failed with "database is locked" when another request had written in between.
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.live_server import LiveServer

    server = LiveServer(app)
    server.start()
    try:
        headers = {"Authorization": f"Bearer {tokens['admin']}"}
        with httpx.Client(base_url=server.url, timeout=60) as http, ThreadPoolExecutor(8) as pool:
            statuses = list(
                    pool.map(lambda _: http.get("/v1/devices", headers=headers).status_code,
                             range(24))
                )  # fmt: skip
    finally:
        server.stop()
    assert statuses == [200] * 24


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({"role": "device"}, "needs a device"),
        ({"role": "device", "device_id": "no-such-device"}, "no device"),
        ({"role": "agronomist"}, "needs a farm"),
        ({"role": "agronomist", "farm_ids": ["nowhere"]}, "no farm 'nowhere'"),
        ({"role": "admin", "device_id": DEVICE_A}, "takes no device"),
        ({"role": "platform", "platform_id": "pdd", "farm_ids": ["garlic-coop-1"]}, "no farm"),
        ({"role": "root"}, "unknown role"),
    ],
)
def test_a_key_whose_scope_does_not_fit_its_role_is_not_created(
    sessions: sessionmaker[Session], scope: dict[str, object], message: str
) -> None:
    with sessions.begin() as session, pytest.raises(ApiKeyError, match=message):
        create_key(session, name="x", pepper=b"", **scope)  # type: ignore[arg-type]
