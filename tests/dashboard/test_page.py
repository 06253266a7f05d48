"""The page in Chromium before any data: it boots clean under its CSP, asks for a key,
keeps it in this tab only, and drops a key the API refuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.auth import Role, create_key
from agrimatch.contract.sensors import SENSORS
from agrimatch.registry import make_engine, migrate, session_factory, upsert_scenario
from agrimatch.scenario import parse_scenario
from agrimatch.store.embedded import EmbeddedStore
from api import create_app
from tests.api.conftest import PEPPER, SCENARIO, api_settings
from tests.dashboard.conftest import Tab, enter_key
from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    root = tmp_path_factory.mktemp("dashboard-page")
    engine = make_engine(f"sqlite:///{root / 'registry.sqlite3'}")
    migrate(engine)
    factory = session_factory(engine)
    with factory.begin() as session:
        upsert_scenario(session, parse_scenario(SCENARIO))
    yield factory
    engine.dispose()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sessions: sessionmaker[Session]
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("dashboard-page-data")
    store = EmbeddedStore(root / "telemetry.sqlite3")
    live = LiveServer(create_app(api_settings(root), store=store, sessions=sessions))
    live.start()
    yield live
    live.stop()
    store.close()


@pytest.fixture(scope="module")
def admin_token(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        _, token = create_key(session, name="page", role=Role.ADMIN, pepper=PEPPER.encode())
    return token


def _stored(tab: Tab) -> dict[str, object]:
    return tab.page.evaluate(
        """() => ({session: sessionStorage.getItem("agrimatch.apiKey"),
                   local: localStorage.length, cookies: document.cookie})"""
    )


def test_the_page_boots_with_a_key_prompt_and_no_console_errors(
    tab: Tab, server: LiveServer
) -> None:
    tab.page.goto(server.url + "/")
    assert tab.page.url == server.url + "/dashboard/"
    tab.page.wait_for_selector("#key-input", state="visible")
    assert tab.page.is_hidden("#views")
    # uPlot (the classic deferred script) ran before the modules that use it.
    assert tab.page.evaluate("typeof uPlot") == "function"
    assert tab.page.evaluate("document.activeElement.id") == "key-input"
    assert tab.errors() == []


def test_a_string_that_is_not_a_key_is_neither_kept_nor_sent(tab: Tab, server: LiveServer) -> None:
    enter_key(tab, server.url, "my password")
    tab.page.wait_for_selector("#message:not([hidden])")
    assert "not an agrimatch API key" in tab.page.text_content("#message")
    assert _stored(tab)["session"] is None
    assert not [r for r in tab.requests if "/v1/" in r.url]
    assert tab.errors() == []


def test_a_key_the_api_refuses_is_forgotten_and_asked_for_again(
    tab: Tab, server: LiveServer
) -> None:
    revoked_looking = "agm_0123456789ab_" + "x" * 43
    enter_key(tab, server.url, revoked_looking)
    tab.page.wait_for_selector("#message:not([hidden])")
    assert "refused the key" in tab.page.text_content("#message")
    assert tab.page.is_visible("#key-input") and tab.page.is_hidden("#views")
    assert _stored(tab)["session"] is None
    # The browser reports the 401s it was answered; nothing else went wrong.
    assert tab.errors(allow_statuses=(401,)) == []


def test_the_key_lives_in_this_tab_only_and_can_be_forgotten(
    tab: Tab, server: LiveServer, admin_token: str
) -> None:
    enter_key(tab, server.url, admin_token)
    tab.page.wait_for_selector("#key-state:not([hidden])")
    assert tab.page.text_content("#key-label") == f"key {admin_token[:16]}"
    assert _stored(tab) == {"session": admin_token, "local": 0, "cookies": ""}
    assert tab.page.input_value("#key-input") == ""  # not left in the form either
    tab.page.reload()
    tab.page.wait_for_selector("#key-state:not([hidden])")  # the tab still holds it
    tab.page.click("#forget-key")
    tab.page.wait_for_selector("#key-input", state="visible")
    assert _stored(tab)["session"] is None
    for request in tab.requests:
        assert admin_token not in request.url
        if "/v1/" in request.url:
            assert request.headers.get("authorization") == f"Bearer {admin_token}"
    assert not [line for line in server.logs.lines if admin_token in line]


def test_the_pages_sensor_units_are_the_contracts(tab: Tab, server: LiveServer) -> None:
    tab.page.goto(server.url + "/dashboard/")
    units = tab.page.evaluate('async () => (await import("./format.js")).SENSOR_UNITS')
    assert units == {name: spec.unit for name, spec in SENSORS.items()}


def test_before_any_forecast_the_page_shows_the_fields_and_says_nothing_is_computed_yet(
    tab: Tab, server: LiveServer, admin_token: str
) -> None:
    enter_key(tab, server.url, admin_token)
    tab.page.wait_for_selector("body[data-state=ready]")
    rows = tab.page.query_selector_all("#fields-table tbody tr")
    assert {r.get_attribute("data-field") for r in rows} == {
        "garlic-coop-1/north",
        "garlic-coop-2/east",
    }
    assert "no readings yet" in rows[0].inner_text()
    assert "no forecast" in rows[0].inner_text()
    states = {
        item.get_attribute("data-section"): (item.get_attribute("data-state"), item.inner_text())
        for item in tab.page.query_selector_all("#access-list li")
    }
    for section in ("campaigns", "planting", "balance"):
        state, text = states[section]
        assert state == "empty" and "nothing yet" in text, (section, text)
    assert tab.page.is_hidden("#campaigns-section") and tab.page.is_hidden("#balance-section")
    # The 404s the page was answered, and says so above, are all the browser reported.
    assert tab.errors(allow_statuses=(404,)) == []
