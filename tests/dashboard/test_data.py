"""The dashboard in Chromium on the default world (three seasons backfilled, a forecast as
of 2026-04-15): the same data as the API, through the API, for each kind of key."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from threadpoolctl import threadpool_limits

from agrimatch.auth import Role, create_key
from agrimatch.contract.sensors import SENSORS
from api import create_app
from forecasting.service import ForecastService
from tests.api.conftest import PEPPER, api_settings
from tests.dashboard.conftest import Tab, enter_key, save_screenshot
from tests.live_server import LiveServer

AS_OF = date(2026, 4, 15)
PLATFORM = "pdd"  # the default scenario's platform
AGRONOMIST_FARM = "farm-01"

# The world's backfill and forecast run (a few minutes on two cores) fall in the first test.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def world(backfilled_world: Any) -> tuple[Any, sessionmaker[Session], Any]:
    store, sessions, root = backfilled_world("default", seasons=3)
    # Models where the app's what-if looks for them: the settings' data dir.
    service = ForecastService(store, sessions, root / "models")
    with threadpool_limits(1):
        run = service.run_forecast(AS_OF)
    assert run.ok, run.run.error
    return store, sessions, root


@pytest.fixture(scope="module")
def server(world: tuple[Any, sessionmaker[Session], Any]) -> Iterator[LiveServer]:
    store, sessions, root = world
    live = LiveServer(create_app(api_settings(root), store=store, sessions=sessions))
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def tokens(world: tuple[Any, sessionmaker[Session], Any]) -> dict[str, str]:
    _, sessions, _ = world
    scopes: dict[str, dict[str, Any]] = {
        "admin": {"role": Role.ADMIN},
        "agronomist": {"role": Role.AGRONOMIST, "farm_ids": [AGRONOMIST_FARM]},
        "platform": {"role": Role.PLATFORM, "platform_id": PLATFORM},
    }
    out = {}
    with sessions.begin() as session:
        for name, scope in scopes.items():
            _, out[name] = create_key(
                session, name=f"dashboard {name}", pepper=PEPPER.encode(), **scope
            )
    return out


def api(server: LiveServer, token: str, path: str, **params: str) -> Any:
    """What the API itself answers: the page must show the same."""
    response = httpx.get(
        f"{server.url}/v1/{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    response.raise_for_status()
    return response.json()


def open_with(tab: Tab, server: LiveServer, token: str) -> None:
    enter_key(tab, server.url, token)
    tab.page.wait_for_selector("body[data-state=ready]", timeout=120_000)


def chart(tab: Tab, name: str) -> dict[str, Any] | None:
    """A chart's state as uPlot holds it (series, data, bands) and its campaign marks."""
    return tab.page.evaluate(
        """async (name) => {
            const { charts } = await import("./charts.js");
            const chart = charts.get(name);
            if (!chart) return null;
            const { plot, marks } = chart;
            return {
                labels: plot.series.slice(1).map((s) => s.label),
                data: plot.data,
                bands: plot.bands.length,
                marks,
                canvas: plot.root.querySelector("canvas") !== null,
            };
        }""",
        name,
    )


def utc_seconds(iso_date: str) -> float:
    return datetime.combine(date.fromisoformat(iso_date), time(), UTC).timestamp()


def before_after(cell: Any) -> tuple[float, float]:
    """A what-if cell's numbers, as the page keeps them beside the text it shows."""
    assert cell is not None
    return float(cell.get_attribute("data-before")), float(cell.get_attribute("data-after"))


def access(tab: Tab) -> dict[str, str]:
    items = tab.page.query_selector_all("#access-list li")
    return {i.get_attribute("data-section"): i.get_attribute("data-state") for i in items}


def test_an_admins_page_shows_every_field_with_its_latest_readings_and_forecast(
    tab: Tab, server: LiveServer, tokens: dict[str, str]
) -> None:
    token = tokens["admin"]
    open_with(tab, server, token)
    fields = api(server, token, "fields", limit="500")["items"]
    rows = tab.page.query_selector_all("#fields-table tbody tr")
    assert [r.get_attribute("data-field") for r in rows] == [
        f"{f['farm']}/{f['field']}" for f in fields
    ]
    assert len(rows) == 8
    first = fields[0]
    key = f"{first['farm']}/{first['field']}"
    row = tab.page.query_selector(f'#fields-table tr[data-field="{key}"]')
    assert row is not None
    assert first["latest"]["time"][:10] in row.inner_text()
    forecast = api(server, token, f"farms/{first['farm']}/fields/{first['field']}/forecast")
    fc = forecast["forecast"]
    shown = row.query_selector(".yield .value")
    assert shown is not None
    assert shown.inner_text() == (
        f"{fc['yield_t_ha_p50']:.1f} ({fc['yield_t_ha_p10']:.1f}–{fc['yield_t_ha_p90']:.1f})"
    )
    # An interval resting on too few harvested seasons says so beside it.
    note = row.query_selector(".yield .few-seasons")
    assert (note is not None) == (fc["interval_trust"] == "few_seasons")
    if note is not None:
        assert f"{fc['training_seasons']} season" in note.inner_text()
    assert fc["harvest_p50"] in row.query_selector(".harvest").inner_text()
    assert tab.page.text_content("#run") == (
        f"forecast as of {AS_OF} · model {forecast['model_version']} · run {forecast['run_id']}"
    )
    assert access(tab) == {
        "campaigns": "ok",
        "planting": "ok",
        "fields": "ok",
        "forecasts": "ok",
        "balance": "ok",
        "whatif": "ok",
    }
    assert tab.errors() == []
    # The key went in headers only, and into no log line of the server.
    assert all(token not in r.url for r in tab.requests)
    assert not [line for line in server.logs.lines if token in line]


def test_a_fields_telemetry_chart_holds_its_daily_means(
    tab: Tab, server: LiveServer, tokens: dict[str, str]
) -> None:
    open_with(tab, server, tokens["admin"])
    state = chart(tab, "telemetry")
    assert state is not None and state["canvas"]
    assert state["labels"] == ["soil moisture 10cm (daily mean)"]
    days, values = state["data"]
    assert 20 <= len(days) <= 31
    assert all(b - a == 86400 for a, b in itertools.pairwise(days))  # daily
    present = [v for v in values if v is not None]
    assert len(present) >= 20
    spec = SENSORS["soil_moisture_10cm"]
    assert all(spec.minimum <= v <= spec.maximum for v in present)
    # Another field and sensor: the chart follows.
    options = tab.page.eval_on_selector_all("#telemetry-field option", "os => os.map(o => o.value)")
    tab.page.select_option("#telemetry-field", options[-1])
    tab.page.select_option("#telemetry-sensor", "air_temp")
    tab.page.wait_for_function(
        """async () => (await import("./charts.js")).charts.get("telemetry")
            ?.plot.series[1].label === "air temp (daily mean)" """
    )
    assert options[-1] in (tab.page.text_content("#telemetry-range") or "").replace(" / ", "/")
    followed = chart(tab, "telemetry")
    assert followed is not None
    assert len([v for v in followed["data"][1] if v is not None]) >= 20
    assert tab.errors() == []


def test_weekly_supply_and_demand_bands_mark_the_campaign_windows(
    tab: Tab, server: LiveServer, tokens: dict[str, str]
) -> None:
    token = tokens["admin"]
    open_with(tab, server, token)
    assert tab.page.input_value("#balance-pair") == "garlic|zhongmou"
    state = chart(tab, "balance")
    assert state is not None and state["canvas"]
    assert state["labels"] == [
        "supply P10", "supply P90", "supply P50", "demand P10", "demand P90", "demand P50",
    ]  # fmt: skip
    assert state["bands"] == 2  # P10–P90 shaded, supply and demand
    weeks = api(server, token, "balance", crop="garlic", region="zhongmou")["weeks"]
    assert len(state["data"][0]) == len(weeks) > 0
    supply_p50 = state["data"][3]
    assert max(supply_p50) == pytest.approx(max(w["supply_kg_p50"] for w in weeks) / 1000)
    campaigns = [
        c
        for c in api(server, token, "recommendations/campaigns")["campaigns"]
        if c["crop"] == "garlic"
    ]
    assert campaigns, "the default world's garlic surplus gets campaigns"
    # Each window from its first day (00:00 UTC, as the chart's x) to the end of its last.
    assert [(m["from"], m["to"]) for m in state["marks"]] == [
        (utc_seconds(c["start"]), utc_seconds(c["end"]) + 86400) for c in campaigns
    ]
    assert [m["label"] for m in state["marks"]] == [c["platform_name"] for c in campaigns]
    # Another pair: its own bands and windows.
    tab.page.select_option("#balance-pair", "tomato|zhongmou")
    tab.page.wait_for_function(
        """async () => (await import("./charts.js")).charts.get("balance")
            ?.marks.length === 1"""
    )
    assert tab.errors() == []


def test_the_campaign_and_planting_tables_show_the_recommendations(
    tab: Tab, server: LiveServer, tokens: dict[str, str]
) -> None:
    token = tokens["admin"]
    open_with(tab, server, token)
    campaigns = api(server, token, "recommendations/campaigns")["campaigns"]
    rows = tab.page.query_selector_all("#campaigns-table tbody tr")
    assert len(rows) == len(campaigns) > 0
    first = min(campaigns, key=lambda c: c["start"])
    text = rows[0].inner_text()
    assert first["start"] in text and first["platform_name"] in text
    assert f"¥{first['value_saved_cny']:,.0f}" in text
    assert first["reasons"][0] in text  # why, in the API's words
    planting = api(server, token, "recommendations/planting")["planting"]
    moved = next(p for p in planting if abs(p["change_ha"]) >= 0.05)
    group = tab.page.query_selector(
        f'#planting-table tbody[data-crop="{moved["crop"]}"][data-region="{moved["region"]}"]'
    )
    assert group is not None
    assert f"{moved['change_ha']:+.1f}" in group.query_selector("tr.group").inner_text()
    farm = next(f for f in moved["farms"] if abs(f["recommended_ha"] - f["current_ha"]) >= 0.05)
    farm_row = group.query_selector(f'tr.farm[data-farm="{farm["farm"]}"]')
    assert farm_row is not None and farm["reasons"][0] in farm_row.inner_text()
    assert tab.errors() == []


def test_a_what_if_of_more_garlic_changes_the_numbers_shown(
    tab: Tab, server: LiveServer, tokens: dict[str, str]
) -> None:
    open_with(tab, server, tokens["admin"])
    tab.page.fill('#whatif-crops tr[data-crop="garlic"] .area-scale', "1.5")
    tab.page.click("#whatif-run")
    tab.page.wait_for_selector("#whatif-result:not([hidden])", timeout=600_000)
    garlic = tab.page.query_selector('#whatif-table tr[data-crop="garlic"]')
    assert garlic is not None
    peak = garlic.query_selector("td.peak_surplus_kg_p50")
    assert peak is not None
    before, after = before_after(peak)
    assert after > before * 1.2  # half as much garlic again, a larger glut
    assert "→" in peak.inner_text()
    at_risk_before, at_risk_after = before_after(garlic.query_selector("td.value_at_risk_cny"))
    assert at_risk_after > at_risk_before
    # Crops left as they were do not move.
    maize = tab.page.query_selector('#whatif-table tr[data-crop="maize"] td.peak_surplus_kg_p50')
    maize_before, maize_after = before_after(maize)
    assert maize_before == maize_after
    assert (tab.page.text_content("#whatif-status") or "").startswith("done in")
    assert tab.page.query_selector_all("#whatif-campaigns tbody tr")
    save_screenshot(tab, "dashboard.png")
    assert tab.errors() == []


def test_a_platform_key_sees_its_supply_and_proposals_and_is_told_what_it_may_not(
    tab: Tab, server: LiveServer, tokens: dict[str, str]
) -> None:
    token = tokens["platform"]
    open_with(tab, server, token)
    seen = access(tab)
    assert seen == {
        "supply": "ok",
        "proposals": "ok",
        "campaigns": "forbidden",
        "planting": "forbidden",
        "fields": "forbidden",
    }
    refused = tab.page.query_selector('#access-list li[data-section="fields"]')
    assert "not for this key" in refused.inner_text()
    assert "role is platform" in refused.inner_text()
    assert tab.page.is_hidden("#fields-section") and tab.page.is_hidden("#whatif-section")
    state = chart(tab, "supply")
    assert state is not None and state["canvas"] and state["bands"] == 1
    weeks = [
        w for w in api(server, token, "supply")["weeks"]
        if (w["crop"], w["region"]) == ("garlic", "zhongmou")
    ]  # fmt: skip
    assert len(state["data"][0]) == len(weeks) > 0
    proposals = api(server, token, "proposals")["proposals"]
    assert len(tab.page.query_selector_all("#proposals-table tbody tr")) == len(proposals) > 0
    save_screenshot(tab, "dashboard-platform.png")
    # The 403s it was answered, and explains above, are all the browser reported.
    assert tab.errors(allow_statuses=(403,)) == []


def test_an_agronomist_sees_the_fields_of_their_farms_only(
    tab: Tab, server: LiveServer, tokens: dict[str, str]
) -> None:
    open_with(tab, server, tokens["agronomist"])
    rows = tab.page.query_selector_all("#fields-table tbody tr")
    assert rows
    assert {r.get_attribute("data-field").split("/")[0] for r in rows} == {AGRONOMIST_FARM}
    assert tab.errors() == []
