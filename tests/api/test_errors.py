"""Every error is an RFC 9457 problem; the OpenAPI document shows an example everywhere."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import DEVICE_A, bearer

PROBLEM_JSON = "application/problem+json"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}
SECRET = "s3cret-password"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_MEMBERS
    assert body["status"] == status
    return body


def test_an_unknown_path_is_a_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/nothing-here"), 404)
    assert body["instance"] == "/v1/nothing-here"
    assert body["type"] == "about:blank" and body["title"] == "Not Found"


def test_an_unknown_device_is_a_404_problem(client: TestClient, tokens: dict[str, str]) -> None:
    body = assert_problem(
        client.get("/v1/devices/nope/config", headers=bearer(tokens["admin"])), 404
    )
    assert "nope" in body["detail"]


def test_a_method_the_path_does_not_take_is_a_405_problem(client: TestClient) -> None:
    response = client.delete("/v1/telemetry")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


def test_a_declared_body_over_the_limit_is_a_413_problem(
    client: TestClient, tokens: dict[str, str]
) -> None:
    body = assert_problem(
        client.post(
            "/v1/telemetry", content=b"[" * (1024 * 1024 + 1), headers=bearer(tokens["device_a"])
        ),
        413,
    )
    assert "1048576 bytes" in body["detail"]


def test_a_streamed_body_over_the_limit_is_a_413_problem(
    client: TestClient, tokens: dict[str, str]
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(20):
            yield b"[" * 65536

    response = client.post("/v1/telemetry", content=chunks(), headers=bearer(tokens["device_a"]))
    assert_problem(response, 413)


def test_a_bad_field_is_a_422_problem_naming_it(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.put(
        f"/v1/devices/{DEVICE_A}/config",
        json={"interval_s": 0.5, "thresholds": {"air_temp": {"min": "warm"}}},
        headers=bearer(tokens["admin"]),
    )
    body = assert_problem(response, 422)
    fields = {(e["in"], e["field"]) for e in body["errors"]}
    assert ("body", "interval_s") in fields
    assert ("body", "thresholds.air_temp.min") in fields
    assert "warm" not in response.text  # the input is not echoed


def test_a_bad_query_parameter_is_a_422_problem_naming_it(
    client: TestClient, tokens: dict[str, str]
) -> None:
    body = assert_problem(client.get("/v1/jobs?limit=0", headers=bearer(tokens["admin"])), 422)
    assert body["errors"][0]["in"] == "query" and body["errors"][0]["field"] == "limit"


def test_an_unexpected_error_is_a_500_problem_without_cause_or_secret(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    def explode() -> None:
        raise RuntimeError(f"cannot reach postgresql://agrimatch:{SECRET}@db/agrimatch")

    app.add_api_route("/boom", explode)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        response = client.get("/boom")
    body = assert_problem(response, 500)
    assert "RuntimeError" not in response.text and "Traceback" not in response.text
    assert SECRET not in response.text
    assert "RuntimeError" in caplog.text  # logged for the operator...
    assert SECRET not in caplog.text  # ...with the password masked
    assert body["type"] == "urn:agrimatch:problem:internal"


def test_every_operation_documents_an_example_and_its_problems(client: TestClient) -> None:
    schema = client.get("/v1/openapi.json").json()
    assert "HTTPValidationError" not in str(schema)  # FastAPI's own 422 shape is replaced
    assert "Problem" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            successes = [c for c in operation["responses"] if c.startswith("2")]
            assert successes, (method, path)
            for code in successes:
                content = operation["responses"][code]["content"]
                assert any("example" in c for c in content.values()), (method, path, code)
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    assert PROBLEM_JSON in response["content"], (method, path, code)
