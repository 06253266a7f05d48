"""Serving the dashboard: the front page, a strict CSP, an allow-list of files, gzip and ETags."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.store.embedded import EmbeddedStore
from api import create_app
from api.dashboard import STATIC_DIR
from tests.api.conftest import api_settings

# Where a string would become markup, an inline style or code.
HTML_SINKS = re.compile(
    r"\.(?:inner|outer)HTML\s*=|insertAdjacentHTML|document\.write|setAttribute\(\s*[\"']style"
    r"|\beval\(|new Function\("
)
MODULE_IMPORT = re.compile(r"""^import\s.*?\sfrom\s+"\./([\w./-]+)";""", re.M | re.S)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def client(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    store = EmbeddedStore(tmp_path / "telemetry.sqlite3")
    app = create_app(api_settings(tmp_path), store=store, sessions=sessions)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    store.close()


class _Page(HTMLParser):
    """What index.html loads, and anything inline."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.style_elements = 0
        self.style_attributes: list[str] = []
        self.handler_attributes: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self._in_script = True
            if values.get("src"):
                self.urls.append(values["src"] or "")
        if tag == "link" and values.get("href"):
            self.urls.append(values["href"] or "")
        if tag == "style":
            self.style_elements += 1
        for name, _ in attrs:
            if name == "style":
                self.style_attributes.append(tag)
            if name.startswith("on"):
                self.handler_attributes.append(f"{tag} {name}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def _page() -> _Page:
    page = _Page()
    page.feed((STATIC_DIR / "index.html").read_text())
    return page


def test_the_front_page_redirects_to_the_dashboard(client: TestClient) -> None:
    for path in ("/", "/dashboard"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 307, path
        assert response.headers["location"] == "/dashboard/"


def test_the_page_is_served_with_a_content_security_policy_of_this_origin_only(
    client: TestClient,
) -> None:
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "unsafe" not in policy  # no 'unsafe-inline', no 'unsafe-eval'
    assert "form-action 'none'" in policy  # no form can send the key anywhere
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "<title>" in response.text


def test_the_page_has_no_inline_script_style_or_event_handler() -> None:
    page = _page()
    assert page.inline_scripts == 0
    assert page.style_elements == 0
    assert page.style_attributes == []
    assert page.handler_attributes == []
    for module in STATIC_DIR.glob("*.js"):
        source = module.read_text()
        # Text from the API is never parsed as HTML; styles are set through CSSOM only.
        assert not HTML_SINKS.search(source), (module.name, HTML_SINKS.search(source))


def test_every_file_the_page_loads_is_served(client: TestClient) -> None:
    wanted = set(_page().urls)
    for module in STATIC_DIR.glob("*.js"):
        wanted |= set(MODULE_IMPORT.findall(module.read_text()))
    assert {"app.js", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"} <= wanted
    for name in sorted(wanted):
        response = client.get(f"/dashboard/{name}")
        assert response.status_code == 200, name
        assert response.content == (STATIC_DIR / name).read_bytes(), name
    assert client.get("/dashboard/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/dashboard/dashboard.css").headers["content-type"].startswith("text/css")


def test_files_come_gzipped_and_revalidate_with_their_etag(client: TestClient) -> None:
    first = client.get("/dashboard/vendor/uPlot.iife.min.js", headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    assert int(first.headers["content-length"]) < len(first.content)  # decoded by the client
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(
        "/dashboard/vendor/uPlot.iife.min.js",
        headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""
    plain = client.get("/dashboard/app.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["etag"] != client.get("/dashboard/app.js").headers["etag"]


def test_head_answers_with_the_headers_alone(client: TestClient) -> None:
    response = client.head("/dashboard/", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["content-length"]) == (STATIC_DIR / "index.html").stat().st_size


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/nope.js",
        "/dashboard/_static.py",
        "/dashboard/%2e%2e/_static.py",
        "/dashboard/..%2f..%2fmain.py",
        "/dashboard/vendor/",
        "/dashboard//etc/passwd",
    ],
)
def test_only_the_dashboards_own_files_are_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_dashboard_is_not_an_api_operation(client: TestClient) -> None:
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/dashboard")]


def test_dashboard_requests_are_counted_under_one_route_template(client: TestClient) -> None:
    client.get("/dashboard/app.js")
    client.get("/dashboard/charts.js")
    metrics = client.get("/metrics").text
    assert 'route="/dashboard/{path:path}",status="200"} 2.0' in metrics


def test_the_page_weighs_under_its_budget() -> None:
    # HTML + JS + CSS + the vendored library, as the README states it: small and fast.
    files = [p for p in STATIC_DIR.rglob("*") if p.suffix in (".html", ".js", ".css", ".svg")]
    raw = sum(p.stat().st_size for p in files)
    packed = sum(len(gzip.compress(p.read_bytes(), 9, mtime=0)) for p in files)
    assert raw < 150_000 and packed < 60_000, (raw, packed)
