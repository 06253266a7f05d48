"""Serving the dashboard's files: an allow-list in memory, gzip, ETags, strict headers."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api.errors import ProblemError

STATIC_DIR = Path(__file__).resolve().parent / "static"
DASHBOARD_PATH = "/dashboard/"

# Only this origin's files run or style the page: no inline script or style
# (so an injected one cannot either), no plugins, no <base> rewriting the
# module URLs, no framing (clickjacking a page holding a key). form-action
# 'none': every form is handled by script; if the script ever failed to take
# the key form's submit, the browser would still refuse to send the key anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The page's requests carry no Referer: nothing of it leaks to /v1 logs or elsewhere.
    "Referrer-Policy": "no-referrer",
    # File names carry no version: revalidate each time (a 304 when unchanged).
    "Cache-Control": "no-cache",
    "Vary": "Accept-Encoding",
}
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    gzipped: bytes | None  # None when gzip would not make it smaller
    media_type: str
    etag: str  # of the identity body; the gzipped one is this with "-gz"


class DashboardFiles:
    """The files under ``root`` (hidden ones excepted) by their relative URL path."""

    def __init__(self, root: Path) -> None:
        self.assets: dict[str, _Asset] = {}
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue
            body = path.read_bytes()
            # mtime=0: the same file always compresses to the same bytes.
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            self.assets[relative.as_posix()] = _Asset(
                body=body,
                gzipped=packed if len(packed) < len(body) else None,
                media_type=_MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
                etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
            )

    def response(self, request: Request, name: str) -> Response:
        """The file ``name`` as ``request`` takes it (gzip, 304, HEAD); a 404 problem for
        any name not in the allow-list."""
        asset = self.assets.get(name)
        if asset is None:
            raise ProblemError(404, f"no resource at {request.url.path}")
        body, etag = asset.body, asset.etag
        headers = dict(_HEADERS)
        if asset.gzipped is not None and _accepts_gzip(request.headers.get("accept-encoding")):
            body, etag = asset.gzipped, asset.etag[:-1] + '-gz"'
            headers["Content-Encoding"] = "gzip"
        headers["ETag"] = etag
        if _matches(request.headers.get("if-none-match"), etag):
            headers.pop("Content-Encoding", None)
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return Response(headers=headers, media_type=asset.media_type)
        return Response(body, headers=headers, media_type=asset.media_type)


def _accepts_gzip(accept_encoding: str | None) -> bool:
    for item in (accept_encoding or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            return not q or _positive(q)
    return False


def _positive(q: str) -> bool:
    try:
        return float(q) > 0
    except ValueError:
        return False


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


@cache
def _files() -> DashboardFiles:
    # Read once, on the first request: importing the app touches no file.
    return DashboardFiles(STATIC_DIR)


router = APIRouter(include_in_schema=False)


def _to_dashboard(request: Request) -> RedirectResponse:
    # root_path: behind a proxy that mounts the app under a prefix, stay under it.
    return RedirectResponse(request.scope.get("root_path", "") + DASHBOARD_PATH, status_code=307)


@router.api_route("/", methods=["GET", "HEAD"])
async def root(request: Request) -> RedirectResponse:
    """The dashboard is the app's front page."""
    return _to_dashboard(request)


@router.api_route("/dashboard", methods=["GET", "HEAD"])
async def dashboard_without_slash(request: Request) -> RedirectResponse:
    """The page's URLs are relative to ``/dashboard/``: it needs the slash."""
    return _to_dashboard(request)


@router.api_route(DASHBOARD_PATH + "{path:path}", methods=["GET", "HEAD"])
async def dashboard_file(request: Request, path: str) -> Response:
    """The page (``/dashboard/``) and its scripts, styles and vendored chart library."""
    return _files().response(request, path or "index.html")
