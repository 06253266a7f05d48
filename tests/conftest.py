"""Shared fixtures: real servers (one per session) and stores on fresh databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from agrimatch.store.embedded import EmbeddedStore
from agrimatch.store.influx import InfluxStore, quote_ident
from tests.services import InfluxServer, MosquittoServer, ServiceNotInstalled

ServerT = TypeVar("ServerT", InfluxServer, MosquittoServer)


def _started(server_type: type[ServerT], root: Path) -> ServerT:
    # A missing server fails the run instead of skipping it: the store and
    # delivery guarantees are only proven against the real thing.
    try:
        server = server_type(root)
    except ServiceNotInstalled as exc:
        missing = str(exc)
    else:
        server.start()
        return server
    pytest.fail(missing, pytrace=False)


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One influxd for the session; ``.url``, ``stop()``, ``start()``, ``kill()``."""
    server = _started(InfluxServer, tmp_path_factory.mktemp("influxdb"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mosquitto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """One mosquitto for the session; ``.host``, ``.port``, ``.url``, ``stop()``, ``start()``."""
    server = _started(MosquittoServer, tmp_path_factory.mktemp("mosquitto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influx_store(influx_server: InfluxServer) -> Iterator[InfluxStore]:
    """An InfluxStore on a database of its own, dropped afterwards."""
    database = f"test_{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influx_server.url, database)
    try:
        yield store
    finally:
        store.close()
        if influx_server.running:
            httpx.post(
                f"{influx_server.url}/query", data={"q": f"DROP DATABASE {quote_ident(database)}"}
            )


@pytest.fixture
def embedded_store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """An EmbeddedStore on a fresh SQLite file."""
    store = EmbeddedStore(tmp_path / "telemetry.sqlite3")
    try:
        yield store
    finally:
        store.close()


# -- PostgreSQL (the registry database) ------------------------------------------

from tests.services import PostgresServer  # noqa: E402 - appended with the registry fixtures


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session; ``.url(database)``, ``create_database()``."""
    # Missing, it fails the run instead of skipping: the registry is proven on both backends.
    try:
        server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    except ServiceNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database, dropped afterwards."""
    database = f"test_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(database)
    try:
        yield postgres_server.url(database)
    finally:
        if postgres_server.running:
            postgres_server.drop_database(database)


@pytest.fixture(scope="session")
def backfilled_world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., tuple[EmbeddedStore, Any, Path]]]:
    """``world(scenario, seasons, scale)``: a scenario's history backfilled once per session
    into an embedded store and a SQLite registry (hours at 6 h, no device faults)."""
    from agrimatch.registry import make_engine, migrate, session_factory
    from agrimatch.scenario import load_scenario
    from firmware_sim.backfill import BackfillOptions, StoreSink, backfill

    worlds: dict[tuple[str, int, float], tuple[EmbeddedStore, Any, Path]] = {}
    engines = []

    def world(name: str, seasons: int, scale: float = 1.0) -> tuple[EmbeddedStore, Any, Path]:
        key = (name, seasons, scale)
        if key not in worlds:
            root = tmp_path_factory.mktemp(f"world-{name}")
            store = EmbeddedStore(root / "telemetry.sqlite3")
            engine = make_engine(f"sqlite:///{root / 'registry.sqlite3'}")
            migrate(engine)
            engines.append(engine)
            sessions = session_factory(engine)
            options = BackfillOptions(seasons=seasons, interval_s=6 * 3600, realism=False)
            scenario = load_scenario(name).scaled(scale)
            backfill(scenario, store, sessions, StoreSink(store), options)
            worlds[key] = (store, sessions, root)
        return worlds[key]

    yield world
    for store, _, _ in worlds.values():
        store.close()
    for engine in engines:
        engine.dispose()
