"""Per-device rate limits of ``POST /v1/telemetry``: a token bucket per device."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.store.embedded import EmbeddedStore
from api import create_app
from api.ratelimit import TokenBuckets
from tests.api.conftest import DEVICE_A, DEVICE_B, api_settings, bearer, pack


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_the_burst_then_the_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # a token every half second
    assert buckets.take("b") == 0.0  # another device has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    clock.now += 60  # idle: full again, not more than the burst
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_a_zero_rate_means_no_limit() -> None:
    buckets = TokenBuckets(rate_per_s=0.0, burst=1)
    assert all(buckets.take("a") == 0.0 for _ in range(1000))


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert TokenBuckets.retry_after_s(0.01) == 1
    assert TokenBuckets.retry_after_s(2.2) == 3


@pytest.fixture
def slow_client(
    tmp_path: Path, store: EmbeddedStore, sessions: sessionmaker[Session]
) -> Iterator[TestClient]:
    settings = api_settings(tmp_path, api_device_rate_per_s=0.01, api_device_burst=2)
    with TestClient(create_app(settings, store=store, sessions=sessions)) as client:
        yield client


def test_a_device_over_its_rate_gets_429_problem_json_with_retry_after(
    slow_client: TestClient, tokens: dict[str, str]
) -> None:
    def post(device: str, token: str, value: float) -> object:
        return slow_client.post(
            "/v1/telemetry", content=pack(device, air_temp=value), headers=bearer(token)
        )

    assert [post(DEVICE_A, tokens["device_a"], 10.0 + i).status_code for i in range(2)] == [
        200,
        200,
    ]
    refused = slow_client.post(
        "/v1/telemetry", content=pack(DEVICE_A, air_temp=13.0), headers=bearer(tokens["device_a"])
    )
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["retry-after"]) <= 100
    assert DEVICE_A in refused.json()["detail"]
    # Device B is not slowed by A.
    other = slow_client.post(
        "/v1/telemetry", content=pack(DEVICE_B, air_temp=13.0), headers=bearer(tokens["device_b"])
    )
    assert other.status_code == 200
