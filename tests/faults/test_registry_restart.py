"""The registry database (PostgreSQL) restarted while the API serves a steady stream of
requests: reads and /readyz say 503 while it is away, never 500, and the API comes
back, reads and writes, with no restart of its own."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from agrimatch.auth import Role, create_key
from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.settings import Settings
from api import create_app
from tests.live_server import LiveServer
from tests.loadgen import wait_until
from tests.services import LOCALHOST, PostgresServer

pytestmark = [pytest.mark.services, pytest.mark.faults]

PEPPER = "faults-pepper"
REGISTRY_DOWN_S = 5.0
REQUESTS_PER_S = 20.0


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    # A cluster of its own: stopping the session's would pull it from under other tests.
    server = PostgresServer(tmp_path / "postgres")
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


class RequestLoad:
    """GET /readyz and /v1/farms at a steady rate in a thread, counting status codes."""

    def __init__(self, url: str, token: str) -> None:
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        self._thread = threading.Thread(target=self._run, name="request-load", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1 / REQUESTS_PER_S):
            for path in ("/readyz", "/v1/farms"):
                try:
                    self.statuses[self._client.get(path).status_code] += 1
                except httpx.HTTPError:
                    self.statuses[0] += 1  # no answer at all: counted, and asserted absent

    def __enter__(self) -> RequestLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._client.close()


def test_the_api_answers_503_while_postgresql_restarts_and_then_reads_and_writes_again(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    postgres.create_database("registry")
    url = f"postgresql://postgres@{LOCALHOST}:{postgres.port}/registry"
    engine = make_engine(postgres.url("registry"))
    migrate(engine)
    with session_factory(engine).begin() as session:
        _, token = create_key(session, name="ops", role=Role.ADMIN, pepper=PEPPER.encode())
    engine.dispose()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        api_key_pepper=SecretStr(PEPPER),
        database_url=SecretStr(url),
    )
    server = LiveServer(create_app(settings))
    server.start()
    try:
        admin = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

        def farm(name: str) -> httpx.Response:
            body = {"farm": name, "region": "zhongmou", "lat": 34.7, "lon": 113.9}
            new_region = {"region_name": "Zhongmou", "elevation_m": 90.0}
            return admin.post("/v1/farms", json=body | new_region)

        assert admin.get("/readyz").status_code == 200
        assert farm("before-restart").status_code == 201
        with RequestLoad(server.url, token) as load:
            time.sleep(1.0)
            postgres.stop()
            down = admin.get("/readyz")
            assert down.status_code == 503 and down.json()["checks"]["registry"] == "unavailable"
            time.sleep(REGISTRY_DOWN_S)
            postgres.start()
            back = time.monotonic()
            assert wait_until(lambda: admin.get("/readyz").status_code == 200, 60, 0.2)
            ready_s = time.monotonic() - back
            written = farm("after-restart")
            assert written.status_code == 201, written.text
            time.sleep(1.0)
        farms = {f["farm"] for f in admin.get("/v1/farms").json()["items"]}
        assert {"before-restart", "after-restart"} <= farms
        # While it was away: 503 with Retry-After, never a 500 or a hang.
        assert set(load.statuses) <= {200, 503}, load.statuses
        assert load.statuses[503] > 0 and load.statuses[200] > 0
        admin.close()
    finally:
        server.stop()
    print(
        f"\nFAULT PostgreSQL restart: {sum(load.statuses.values())} requests at "
        f"{2 * REQUESTS_PER_S:.0f}/s, registry down {REGISTRY_DOWN_S:.0f} s, "
        f"statuses {dict(load.statuses)}, ready {ready_s:.1f} s after it was back, "
        "write after: 201"
    )
