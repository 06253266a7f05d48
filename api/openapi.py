"""OpenAPI helpers: each operation documents its success with an example, its problems too."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import PROBLEM_JSON
from api.schemas.common import Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

_PROBLEM_DETAILS = {
    400: "the request is malformed (a bad cursor, a bad Content-Length)",
    401: "no API key, or one that is unknown, wrong or revoked",
    403: "the key's role or scope does not allow this",
    404: "no such resource",
    409: "the resource exists already",
    413: "the body is larger than the limit",
    415: "the body's media type is not one this operation takes",
    422: "a field of the request is not valid; errors lists each",
    429: "the device posts faster than its rate; retry after Retry-After seconds",
    503: "a backing service is unavailable; retry after Retry-After seconds",
}


def problem_example(status: int, detail: str | None = None) -> dict[str, Any]:
    """An example problem body for ``status``."""
    phrase = HTTPStatus(status).phrase
    example: dict[str, Any] = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or _PROBLEM_DETAILS.get(status, phrase),
        "instance": "/v1/...",
    }
    if status == 422:
        example |= {
            "type": "urn:agrimatch:problem:validation",
            "title": "Request validation failed",
            "detail": "the request is not valid: body.interval_s",
            "errors": [
                {
                    "in": "body",
                    "field": "interval_s",
                    "pointer": "#/interval_s",
                    "detail": "Value error, interval_s must be within 1..86400 s, got 0.0",
                }
            ],
        }
    return example


def responses(
    example: Any,
    *problems: int,
    status: int = 200,
    description: str = "Success",
    media_type: str = "application/json",
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of an operation: its success with ``example``, and its problems.

    422 is always listed (as a problem, replacing FastAPI's own schema).
    """
    out: dict[int | str, dict[str, Any]] = {
        status: {"description": description, "content": {media_type: {"example": example}}}
    }
    for code in sorted({*problems, 422}):
        out[code] = {
            "description": _PROBLEM_DETAILS.get(code, HTTPStatus(code).phrase),
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF, "example": problem_example(code)}},
        }
    return out


def install_openapi(app: FastAPI) -> None:
    """Generate the schema once, with the Problem model among its components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in problem.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components["Problem"] = problem
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
