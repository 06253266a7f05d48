"""Every operation of the live OpenAPI, fuzzed by schemathesis with a key of each role.

The API runs under uvicorn on a free loopback port, on a world of its own
(the default scenario backfilled into a temporary data dir and forecast as of
2026-04-15), so what the fuzzer creates, changes or deletes touches no other
test. For each role, schemathesis generates requests for every operation
from the schema: no response may be a server error, and every response must
match what the schema says of its status, content type, headers and body.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agrimatch.auth import create_key, pepper
from agrimatch.registry.models import Device
from agrimatch.scenario import load_scenario
from agrimatch.settings import Settings
from api import create_app
from firmware_sim.backfill import BackfillOptions, StoreSink, backfill
from forecasting.service import ForecastService
from tests.live_server import LiveServer

AS_OF = date(2026, 4, 15)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_api(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """The API on its own world: its base URL and a key per role."""
    from agrimatch.cli.wiring import open_forecast_service

    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    settings = Settings(data_dir=data_dir)
    service: ForecastService = open_forecast_service(settings)
    backfill(
        load_scenario("default"),
        service.store,
        service.sessions,
        StoreSink(service.store),
        BackfillOptions(seasons=3, interval_s=21600.0, realism=False),
    )
    assert service.run_forecast(AS_OF).ok
    with service.sessions.begin() as session:
        device = session.query(Device).order_by(Device.id).first()
        assert device is not None
        key_pepper = pepper(settings)
        keys = {
            "admin": create_key(session, name="fuzz-admin", role="admin", pepper=key_pepper)[1],
            "agronomist": create_key(
                session,
                name="fuzz-agronomist",
                role="agronomist",
                farm_ids=[device.farm_id],
                pepper=key_pepper,
            )[1],
            "platform": create_key(
                session, name="fuzz-platform", role="platform", platform_id="pdd", pepper=key_pepper
            )[1],
            "device": create_key(
                session, name="fuzz-device", role="device", device_id=device.id, pepper=key_pepper
            )[1],
        }
    server = LiveServer(create_app(settings, store=service.store, sessions=service.sessions))
    server.start()
    try:
        yield server.url, keys
    finally:
        server.stop()
        service.store.close()


@pytest.fixture(scope="module")
def api_schema(live_api):
    url, _ = live_api
    return schemathesis.openapi.from_url(f"{url}/v1/openapi.json")


FUZZ = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@pytest.mark.parametrize("role", ["admin", "agronomist", "platform", "device"])
def test_every_operation_answers_as_its_schema_says(role, api_schema, live_api):
    # schemathesis' own pytest loader does not run under pytest 9, so the operations
    # are walked here, each one a hypothesis run of its generated cases.
    url, keys = live_api
    headers = {"Authorization": f"Bearer {keys[role]}"}
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case) -> None:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=120)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # every operation is reported
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
