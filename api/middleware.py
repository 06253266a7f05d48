"""ASGI middleware of the app: the request body size limit."""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem_response


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_body_bytes`` with a 413 problem, before reading them.

    A declared ``Content-Length`` over the limit is refused at once; a body
    sent without one (chunked) is counted as it arrives and refused when it
    crosses the limit, so no request can make the server buffer more.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > self.max_body_bytes):
            status, detail = (
                (413, self._too_large(f"{declared} bytes"))
                if declared > self.max_body_bytes
                else (400, "Content-Length is not a byte count")
            )
            response = problem_response(Request(scope), status, detail)
            await response(scope, receive, send)
            return
        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's body read: the exception
                    # handlers turn it into the same 413 problem.
                    raise HTTPException(413, self._too_large(f"over {limit} bytes"))
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self, size: str) -> str:
        return f"the request body is {size}; the limit is {self.max_body_bytes} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None
