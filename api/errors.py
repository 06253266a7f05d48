"""Every error as RFC 9457 problem details (``application/problem+json``).

A problem has ``type``, ``title``, ``status``, ``detail`` and ``instance``
(the request path). ``type`` is ``about:blank`` when the HTTP status says it
all (then ``title`` is the status phrase, as RFC 9457 section 4.2.1 asks),
else a ``urn:agrimatch:problem:{slug}`` naming the kind, and the problem may
carry extension members (``errors``, ``reason``, ``checks``...).

Handlers cover HTTP exceptions (ours and the router's 404/405), request
validation (each bad field by its location), the store being down (503 with
``Retry-After``) and anything unexpected (500, logged with secrets masked; the
body says nothing of the cause).
"""

from __future__ import annotations

import logging
import re
import traceback
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agrimatch.settings import SECRET_MASK
from agrimatch.store import StoreUnavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_PREFIX = "urn:agrimatch:problem:"

# Drivers and HTTP clients put URLs in their messages; a URL may carry a password.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^@\s/]*@")
# A key in a message (a header echoed by some library) is masked the same way.
_API_KEY = re.compile(r"agm_[0-9a-f]{12}_[A-Za-z0-9_-]+")


class ProblemError(Exception):
    """Raise to answer with a problem: ``status``, a ``slug`` for its type, a ``detail``.

    ``headers`` go on the response (``Retry-After``, ``WWW-Authenticate``);
    ``extensions`` become extra members of the problem.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.title = title
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    request: Request,
    status: int,
    detail: str | None = None,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response; ``slug`` None gives ``type`` ``about:blank``."""
    phrase = _phrase(status)
    body: dict[str, Any] = {
        "type": f"{PROBLEM_PREFIX}{slug}" if slug else "about:blank",
        "title": title if slug and title else phrase,
        "status": status,
        "detail": detail or phrase,
        "instance": request.url.path,
    }
    body.update(extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def masked(text: str) -> str:
    """``text`` with URL passwords and API keys replaced by a mask."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{SECRET_MASK}@", text)
    return _API_KEY.sub(SECRET_MASK, text)


async def _problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        headers=exc.headers,
        **exc.extensions,
    )


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    # Also the router's own 404 (no such path) and 405 (with its Allow header).
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(request, exc.status_code, detail, headers=dict(exc.headers or {}))


def _location(loc: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    parts = [str(p) for p in loc]
    where = parts[0] if parts else "request"
    return {
        "in": where,  # body, query, path, header
        "field": ".".join(parts[1:]) if len(parts) > 1 else "",
        "pointer": "#/" + "/".join(parts[1:]) if where == "body" else None,
    }


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The offending input is left out on purpose: it may be a secret.
    errors = [
        _location(err.get("loc", ())) | {"detail": err.get("msg", "")} for err in exc.errors()
    ]
    names = ", ".join(sorted({f"{e['in']}.{e['field']}".rstrip(".") for e in errors}))
    return problem_response(
        request,
        422,
        f"the request is not valid: {names}",
        slug="validation",
        title="Request validation failed",
        errors=errors,
    )


def store_unavailable_problem(request: Request, retry_after_s: int) -> JSONResponse:
    """503 for a store that cannot be reached right now; nothing was stored."""
    return problem_response(
        request,
        503,
        "the telemetry store is unavailable; nothing was stored, retry later",
        slug="store-unavailable",
        title="Telemetry store unavailable",
        headers={"Retry-After": str(retry_after_s)},
    )


def _retry_after(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return int(getattr(settings, "api_retry_after_s", 10))


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    where = f"{request.method} {request.url.path}"
    log.warning("store unavailable on %s: %s", where, masked(str(exc)))
    return store_unavailable_problem(request, _retry_after(request))


async def _registry_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning(
        "registry unavailable on %s %s: %s", request.method, request.url.path, masked(str(exc))
    )
    return problem_response(
        request,
        503,
        "the registry database is unavailable, retry later",
        slug="registry-unavailable",
        title="Registry unavailable",
        headers={"Retry-After": str(_retry_after(request))},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback as masked text, not exc_info: an exception's message may
    # carry a URL password, and the body says nothing of the cause at all.
    log.error(
        "unhandled error on %s %s: %s",
        request.method,
        request.url.path,
        masked("".join(traceback.format_exception(exc))),
    )
    return problem_response(
        request, 500, "an unexpected error occurred; it has been logged", slug="internal"
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem+json."""
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(OperationalError, _registry_unavailable)
    app.add_exception_handler(Exception, _unexpected)
