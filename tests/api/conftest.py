"""The API on real components: an embedded store and a SQLite registry in a temp dir."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.auth import Role, create_key
from agrimatch.contract.telemetry import Reading, encode_telemetry
from agrimatch.registry import make_engine, migrate, session_factory, upsert_scenario
from agrimatch.scenario import parse_scenario
from agrimatch.settings import Settings
from agrimatch.store.embedded import EmbeddedStore
from api import create_app

SCENARIO = """
name = "api-test"
seed = 1
first_season = 2025
seasons = 1

[[regions]]
id = "zhongmou"
name = "Zhongmou, Henan"
lat = 34.72
lon = 113.98

[[farms]]
id = "garlic-coop-1"
region = "zhongmou"
lat = 34.7
lon = 113.9
fields = [{ id = "north", crop = "garlic", area_ha = 2.5, planting = "10-01", devices = 2 }]

[[farms]]
id = "garlic-coop-2"
region = "zhongmou"
lat = 34.8
lon = 113.8
fields = [{ id = "east", crop = "garlic", area_ha = 1.5, planting = "10-01", devices = 1 }]

[[platforms]]
id = "pdd"
name = "Pinduoduo"
campaign_lead_days = 14
"""

DEVICE_A = "garlic-coop-1-north-d1"
DEVICE_B = "garlic-coop-1-north-d2"
DEVICE_C = "garlic-coop-2-east-d1"
PEPPER = "test-pepper"


def api_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings of a test: nothing from the environment or a .env file."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "api_key_pepper": PEPPER,
        "api_store_wait_s": 0.3,
        "ingest_retry_initial_s": 0.05,
        "ingest_retry_max_s": 0.1,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg,arg-type]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pack(device: str, **values: float) -> bytes:
    """A SenML pack of ``device`` with one reading per sensor, sampled a minute ago."""
    now_ms = int((time.time() - 60) * 1000)
    return encode_telemetry(device, [Reading(s, now_ms, v) for s, v in values.items()])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return api_settings(tmp_path)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A migrated SQLite registry holding the test scenario."""
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    migrate(engine)
    factory = session_factory(engine)
    with factory.begin() as session:
        upsert_scenario(session, parse_scenario(SCENARIO))
    yield factory
    engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "telemetry.sqlite3")
    yield store
    store.close()


@pytest.fixture
def app(settings: Settings, store: EmbeddedStore, sessions: sessionmaker[Session]) -> FastAPI:
    return create_app(settings, store=store, sessions=sessions)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # Server errors come back as the 500 a client sees, not as exceptions in the test.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def tokens(sessions: sessionmaker[Session]) -> dict[str, str]:
    """A key of each kind: admin, agronomist (of garlic-coop-1), devices A, B, C, platform."""
    pepper = PEPPER.encode()
    scopes: dict[str, dict[str, object]] = {
        "admin": {"role": Role.ADMIN},
        "agronomist": {"role": Role.AGRONOMIST, "farm_ids": ["garlic-coop-1"]},
        "device_a": {"role": Role.DEVICE, "device_id": DEVICE_A},
        "device_b": {"role": Role.DEVICE, "device_id": DEVICE_B},
        "device_c": {"role": Role.DEVICE, "device_id": DEVICE_C},
        "platform": {"role": Role.PLATFORM, "platform_id": "pdd"},
    }
    out = {}
    with sessions.begin() as session:
        for name, scope in scopes.items():
            _, token = create_key(session, name=name, pepper=pepper, **scope)  # type: ignore[arg-type]
            out[name] = token
    return out
