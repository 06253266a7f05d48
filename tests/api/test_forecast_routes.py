"""Forecasts, recommendations, what-ifs, supply and campaign proposals over HTTP, on the
backfilled default world (three seasons), forecast once as of 2026-04-15 through the API.

The world is the session's (``backfilled_world``), shared with other modules: the
module leaves it as it found it (its run, keys, platform, proposals and campaigns removed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from threadpoolctl import threadpool_limits

from agrimatch.auth import Role, create_key
from agrimatch.registry import Campaign, Farm, Field, Platform, make_engine, migrate
from agrimatch.registry import session_factory as registry_sessions
from agrimatch.registry.models import (
    ApiKey,
    CampaignProposal,
    FieldForecast,
    JobRun,
    Recommendation,
    WeeklyBalance,
    WeeklyDemand,
    WeeklySupply,
)
from agrimatch.store import TelemetryStore
from api import create_app
from api.schemas.forecasts import (
    CampaignPublic,
    DriverPublic,
    FarmPlantingChangePublic,
    FieldForecastPublic,
    PlantingPublic,
    WeeklyBalancePublic,
    WeeklySupplyPublic,
)
from forecasting.campaign_uplift import estimate_uplifts
from forecasting.chain_data import campaigns_frame
from forecasting.results import (
    CampaignResult,
    Driver,
    FarmPlantingChange,
    FieldForecastResult,
    PlantingResult,
    WeeklyBalanceResult,
    WeeklySupplyResult,
)
from tests.api.conftest import PEPPER, api_settings, bearer

AS_OF = date(2026, 4, 15)
PROBLEM_JSON = "application/problem+json"
OTHER_PLATFORM = "coop-mart"
DEVICE = "farm-01-field-01-d1"


@dataclass
class Served:
    """The API on the world, forecast once: its client, keys and the run it made."""

    client: TestClient
    tokens: dict[str, str]
    run: dict[str, Any]
    sessions: sessionmaker[Session]
    store: TelemetryStore

    def get(self, path: str, holder: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=bearer(self.tokens[holder]))

    def post(self, path: str, holder: str, body: Any = None, **params: Any) -> Any:
        return self.client.post(path, json=body, params=params, headers=bearer(self.tokens[holder]))


def _keys(sessions: sessionmaker[Session], farm: str) -> dict[str, str]:
    """A key of each role on the world; a second platform for the scope checks."""
    scopes: dict[str, dict[str, Any]] = {
        "admin": {"role": Role.ADMIN},
        "agronomist": {"role": Role.AGRONOMIST, "farm_ids": [farm]},
        "platform": {"role": Role.PLATFORM, "platform_id": "pdd"},
        "other_platform": {"role": Role.PLATFORM, "platform_id": OTHER_PLATFORM},
        "device": {"role": Role.DEVICE, "device_id": DEVICE},
    }
    with sessions.begin() as session:
        if session.get(Platform, OTHER_PLATFORM) is None:
            session.add(Platform(id=OTHER_PLATFORM, name="Coop Mart", campaign_lead_days=7))
            session.flush()
        return {
            name: create_key(session, name=name, pepper=PEPPER.encode(), **scope)[1]
            for name, scope in scopes.items()
        }


@pytest.fixture(scope="module")
def served(backfilled_world: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store, sessions, _ = backfilled_world("default", seasons=3)
    with sessions() as session:
        last_run = session.scalar(select(func.max(JobRun.id))) or 0
        last_campaign = session.scalar(select(func.max(Campaign.id))) or 0
        last_key_time = session.scalar(select(func.max(ApiKey.created_at)))
    tokens = _keys(sessions, "farm-01")
    app = create_app(
        api_settings(tmp_path_factory.mktemp("api-forecasts")), store=store, sessions=sessions
    )
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            with threadpool_limits(1):
                ran = client.post(
                    "/v1/forecasts/run",
                    json={"as_of": AS_OF.isoformat()},
                    headers=bearer(tokens["admin"]),
                )
            assert ran.status_code == 200, ran.text
            yield Served(client, tokens, ran.json(), sessions, store)
    finally:
        _leave_as_found(sessions, last_run, last_campaign, last_key_time, tokens)


def _leave_as_found(
    sessions: sessionmaker[Session],
    last_run: int,
    last_campaign: int,
    last_key_time: Any,
    tokens: dict[str, str],
) -> None:
    key_ids = [token.split("_")[1] for token in tokens.values()]
    with sessions.begin() as session:
        session.execute(delete(CampaignProposal))
        session.execute(delete(Campaign).where(Campaign.id > last_campaign))
        session.execute(delete(ApiKey).where(ApiKey.id.in_(key_ids)))
        session.execute(delete(Platform).where(Platform.id == OTHER_PLATFORM))
        for table in (FieldForecast, Recommendation, WeeklySupply, WeeklyDemand, WeeklyBalance):
            session.execute(delete(table).where(table.run_id > last_run))
        session.execute(delete(JobRun).where(JobRun.id > last_run))


def _names(result_type: type) -> set[str]:
    return {f.name for f in fields(result_type)}


@pytest.mark.parametrize(
    ("schema", "result_type", "derived"),
    [
        (FieldForecastPublic, FieldForecastResult, set()),
        (DriverPublic, Driver, set()),
        (CampaignPublic, CampaignResult, set()),
        (PlantingPublic, PlantingResult, set()),
        (FarmPlantingChangePublic, FarmPlantingChange, {"change_ha"}),  # its property
        (WeeklySupplyPublic, WeeklySupplyResult, set()),
        (WeeklyBalancePublic, WeeklyBalanceResult, set()),
    ],
)
def test_the_result_schemas_name_the_result_fields_one_for_one(
    schema: Any, result_type: type, derived: set[str]
) -> None:
    assert set(schema.model_fields) == _names(result_type) | derived


# --- forecasts ----------------------------------------------------------------------------


def test_a_forecast_run_through_the_api_is_recorded_with_its_results(served: Served) -> None:
    run = served.run
    assert run["status"] == "ok" and run["error"] is None
    assert run["as_of"] == AS_OF.isoformat() and run["model_version"].startswith("yield-")
    with served.sessions() as session:
        assert session.get(JobRun, run["run_id"]).status == "ok"
        stored = session.scalar(
            select(func.count(FieldForecast.id)).where(FieldForecast.run_id == run["run_id"])
        )
    assert stored >= 5


def test_a_date_the_registry_cannot_forecast_is_a_409_before_anything_runs(
    served: Served,
) -> None:
    with served.sessions() as session:
        runs = session.scalar(select(func.count(JobRun.id)))
    response = served.post("/v1/forecasts/run", "agronomist", {"as_of": "2010-01-01"})
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "no field-season is in progress" in response.json()["detail"]
    with served.sessions() as session:
        assert session.scalar(select(func.count(JobRun.id))) == runs


def test_a_fields_forecast_carries_the_result_fields_and_its_run(served: Served) -> None:
    response = served.get(
        "/v1/farms/farm-01/fields/field-01/forecast", "agronomist", as_of=AS_OF.isoformat()
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["as_of"], body["run_id"]) == (AS_OF.isoformat(), served.run["run_id"])
    assert body["model_version"] == served.run["model_version"]
    forecast = body["forecast"]
    assert set(forecast) == _names(FieldForecastResult)
    assert (forecast["farm"], forecast["field"], forecast["crop"]) == ("farm-01", "field-01",
                                                                       "garlic")  # fmt: skip
    assert forecast["yield_t_ha_p10"] <= forecast["yield_t_ha_p50"] <= forecast["yield_t_ha_p90"]
    assert date.fromisoformat(forecast["harvest_p50"]) > AS_OF
    assert all(set(d) == {"feature", "effect_t_ha"} for d in forecast["drivers"])
    # Two harvested seasons behind the model: the interval says it is not to be trusted.
    assert (forecast["interval_trust"], forecast["training_seasons"]) == ("few_seasons", 2)
    assert forecast["calibration"] == "cross_validated"


def test_another_farms_forecast_is_absent_to_an_agronomist(served: Served) -> None:
    path = "/v1/farms/farm-02/fields/field-01/forecast"
    assert served.get(path, "agronomist", as_of=AS_OF.isoformat()).status_code == 404
    assert served.get(path, "admin", as_of=AS_OF.isoformat()).status_code == 200


def test_no_stored_run_is_a_404_saying_how_to_run_one(served: Served) -> None:
    for path in (
        "/v1/farms/farm-01/fields/field-01/forecast",
        "/v1/balance",
        "/v1/recommendations/campaigns",
        "/v1/recommendations/planting",
    ):
        response = served.get(path, "admin", as_of="2001-01-01")
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM_JSON
        detail = response.json()["detail"]
        assert "agrimatch forecast run" in detail and "POST /v1/forecasts/run" in detail


def test_the_balance_is_served_by_week_with_the_result_fields(served: Served) -> None:
    body = served.get("/v1/balance", "agronomist", crop="garlic", as_of=AS_OF.isoformat()).json()
    assert body["run_id"] == served.run["run_id"]
    weeks = body["weeks"]
    assert weeks and all(w["crop"] == "garlic" for w in weeks)
    assert all(set(w) == _names(WeeklyBalanceResult) for w in weeks)
    assert any(w["p_surplus"] > 0.5 for w in weeks), "the default world has a garlic glut"


# --- recommendations ----------------------------------------------------------------------


def test_campaigns_are_served_by_date_with_the_result_fields(served: Served) -> None:
    body = served.get("/v1/recommendations/campaigns", "agronomist", as_of=AS_OF.isoformat())
    campaigns = body.json()["campaigns"]
    assert campaigns, "the default world's garlic surplus gets campaigns"
    assert all(set(c) == _names(CampaignResult) for c in campaigns)
    starts = [c["start"] for c in campaigns]
    assert starts == sorted(starts)
    assert all(c["value_saved_cny"] > 0 and c["reasons"] for c in campaigns)


def test_an_agronomist_sees_only_its_farms_in_the_planting_plan(served: Served) -> None:
    everyone = served.get("/v1/recommendations/planting", "admin", as_of=AS_OF.isoformat())
    mine = served.get("/v1/recommendations/planting", "agronomist", as_of=AS_OF.isoformat())
    all_farms = {f["farm"] for p in everyone.json()["planting"] for f in p["farms"]}
    my_farms = {f["farm"] for p in mine.json()["planting"] for f in p["farms"]}
    assert len(all_farms) > 1 and my_farms == {"farm-01"}
    # The regions' totals are the same for both: only the farms are narrowed.
    totals = [(p["crop"], p["region"], p["recommended_ha"]) for p in everyone.json()["planting"]]
    assert totals == [(p["crop"], p["region"], p["recommended_ha"])
                      for p in mine.json()["planting"]]  # fmt: skip
    farm = next(f for p in mine.json()["planting"] for f in p["farms"])
    assert farm["change_ha"] == pytest.approx(farm["recommended_ha"] - farm["current_ha"])


# --- what-if --------------------------------------------------------------------------------


def _campaign_key(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c["platform"], c["crop"], c["region"], c["start"], c["end"], round(c["target_kg"]))


def test_a_what_if_with_no_change_gives_the_forecast_runs_campaigns(served: Served) -> None:
    with served.sessions() as session:
        runs = session.scalar(select(func.count(JobRun.id)))
    with threadpool_limits(1):
        response = served.post("/v1/whatif", "agronomist", {"as_of": AS_OF.isoformat()})
    assert response.status_code == 200, response.text
    body = response.json()
    stored = served.get("/v1/recommendations/campaigns", "admin", as_of=AS_OF.isoformat())
    assert sorted(map(_campaign_key, body["campaigns"])) == sorted(
        map(_campaign_key, stored.json()["campaigns"])
    )
    for row in body["comparison"]:
        assert row["peak_surplus_kg_p50_before"] == row["peak_surplus_kg_p50_after"]
        assert row["campaigns_before"] == row["campaigns_after"]
    with served.sessions() as session:
        assert session.scalar(select(func.count(JobRun.id))) == runs  # nothing saved


def test_a_what_if_with_less_garlic_has_less_garlic_surplus(served: Served) -> None:
    with threadpool_limits(1):
        response = served.post(
            "/v1/whatif", "admin", {"as_of": AS_OF.isoformat(), "area_scale": {"garlic": 0.5}}
        )
    assert response.status_code == 200, response.text
    [garlic] = [r for r in response.json()["comparison"] if r["crop"] == "garlic"]
    assert garlic["peak_surplus_kg_p50_after"] < garlic["peak_surplus_kg_p50_before"]
    assert set(response.json()["campaigns"][0]) == {
        "platform", "platform_name", "crop", "region", "start", "end", "target_kg",
        "expected_absorbed_kg", "value_saved_cny", "reasons",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"area_scale": {"garlc": 0.8}}, "area_scale.garlc", "no field grows garlc"),
        ({"planting_shift_days": {"pineapple": 7}}, "planting_shift_days.pineapple", "pineapple"),
        ({"weather": "locusts"}, "weather", "unknown weather scenario 'locusts'"),
    ],
)
def test_a_what_if_naming_what_the_plan_lacks_is_a_422_naming_the_field(
    served: Served, change: dict[str, Any], field: str, words: str
) -> None:
    response = served.post("/v1/whatif", "agronomist", {"as_of": AS_OF.isoformat()} | change)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    [error] = response.json()["errors"]
    assert error["field"] == field and words in error["detail"]


def test_a_what_if_on_a_date_the_registry_cannot_forecast_is_a_409(served: Served) -> None:
    response = served.post("/v1/whatif", "admin", {"as_of": "2010-01-01"})
    assert response.status_code == 409
    assert "no field-season is in progress" in response.json()["detail"]


# --- supply ---------------------------------------------------------------------------------


def test_supply_is_by_crop_region_and_week_with_no_farm_anywhere(served: Served) -> None:
    response = served.get("/v1/supply", "platform")
    assert response.status_code == 200
    body = response.json()
    assert body["weeks"] and all(set(w) == _names(WeeklySupplyResult) for w in body["weeks"])
    with served.sessions() as session:
        farms = list(session.scalars(select(Farm.id)))
        field_ids = set(session.scalars(select(Field.field_id)))
    for name in [*farms, *field_ids, DEVICE, "farm", "field", "device"]:
        assert name not in response.text, name


def test_supply_is_narrowed_by_crop_region_and_dates(served: Served) -> None:
    body = served.get(
        "/v1/supply", "platform", crop="garlic", region="zhongmou", **{"from": "2026-05-01",
        "to": "2026-06-30"},
    ).json()  # fmt: skip
    weeks = [date.fromisoformat(w["week"]) for w in body["weeks"]]
    assert weeks and all(w["crop"] == "garlic" for w in body["weeks"])
    assert min(weeks) >= date(2026, 4, 25) and max(weeks) <= date(2026, 6, 30)


# --- the roles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("holder", "method", "path"),
    [
        ("device", "GET", "/v1/supply"),
        ("agronomist", "GET", "/v1/supply"),
        ("device", "GET", "/v1/proposals"),
        ("agronomist", "GET", "/v1/proposals"),
        ("agronomist", "POST", "/v1/proposals/x.y.z.2026-05-01/accept"),
        ("device", "GET", "/v1/recommendations/campaigns"),
        ("platform", "GET", "/v1/recommendations/campaigns"),
        ("platform", "GET", "/v1/balance"),
        ("platform", "POST", "/v1/whatif"),
        ("platform", "POST", "/v1/forecasts/run"),
        ("device", "POST", "/v1/forecasts/run"),
    ],
)
def test_a_key_of_the_wrong_role_is_forbidden(
    served: Served, holder: str, method: str, path: str
) -> None:
    response = served.client.request(method, path, json={}, headers=bearer(served.tokens[holder]))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize("path", ["/v1/supply", "/v1/proposals", "/v1/balance"])
def test_no_key_is_a_401_problem(served: Served, path: str) -> None:
    response = served.client.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON


# --- proposals ------------------------------------------------------------------------------


def _proposals(served: Served, holder: str = "platform", **params: Any) -> list[dict[str, Any]]:
    response = served.get("/v1/proposals", holder, **params)
    assert response.status_code == 200, response.text
    proposals: list[dict[str, Any]] = response.json()["proposals"]
    return proposals


def test_the_newest_runs_campaigns_are_proposed_to_their_platform(served: Served) -> None:
    proposals = _proposals(served)
    newest = served.client.get(
        "/v1/recommendations/campaigns", headers=bearer(served.tokens["admin"])
    ).json()
    mine = [c for c in newest["campaigns"] if c["platform"] == "pdd"]
    current = [p for p in proposals if p["proposed_in_run"] == newest["run_id"]]
    assert len(current) == len(mine) >= 1
    for proposal in current:
        assert proposal["id"] == (
            f"pdd.{proposal['crop']}.{proposal['region']}.{proposal['start']}"
        )
        assert set(proposal) >= _names(CampaignResult)


def test_another_platform_neither_sees_nor_answers_a_platforms_proposals(
    served: Served,
) -> None:
    theirs = _proposals(served)[0]["id"]
    assert _proposals(served, "other_platform") == []
    for action, body in (("accept", None), ("decline", {"reason": "x"}),
                         ("outcome", {"kg_sold": 1.0, "start": "2026-05-01",
                                      "end": "2026-05-02"})):  # fmt: skip
        response = served.post(f"/v1/proposals/{theirs}/{action}", "other_platform", body)
        assert response.status_code == 404, action
        assert response.headers["content-type"] == PROBLEM_JSON
    acting_as = served.get("/v1/proposals", "other_platform", platform="pdd")
    assert acting_as.status_code == 403


def test_an_admin_answers_for_the_platform_it_names(served: Served) -> None:
    unnamed = served.get("/v1/proposals", "admin")
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["field"] == "platform"
    named = [p["id"] for p in _proposals(served, "admin", platform="pdd")]
    assert named == [p["id"] for p in _proposals(served)]


def test_a_declined_proposal_keeps_its_reason_and_may_still_be_accepted(served: Served) -> None:
    proposal = _proposals(served)[-1]
    declined = served.post(
        f"/v1/proposals/{proposal['id']}/decline", "platform", {"reason": "no cold storage"}
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined"
    assert declined.json()["reason"] == "no cold storage"
    assert declined.json()["decided_by"].startswith("platform (key ")
    [listed] = [p for p in _proposals(served, status="declined") if p["id"] == proposal["id"]]
    assert listed["reason"] == "no cold storage"
    early = served.post(
        f"/v1/proposals/{proposal['id']}/outcome",
        "platform",
        {"kg_sold": 10.0, "start": proposal["start"], "end": proposal["end"]},
    )
    assert early.status_code == 409
    assert "accept" in early.json()["detail"]
    accepted = served.post(f"/v1/proposals/{proposal['id']}/accept", "platform")
    assert accepted.json()["status"] == "accepted" and accepted.json()["reason"] is None


def test_an_accepted_campaigns_outcome_becomes_history_the_uplift_learns_from(
    served: Served,
) -> None:
    proposal = _proposals(served)[0]
    pid = proposal["id"]
    with served.sessions() as session:
        before = estimate_uplifts(campaigns_frame(session)).for_campaign("pdd", proposal["crop"])
    accepted = served.post(f"/v1/proposals/{pid}/accept", "platform")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert pid in [p["id"] for p in _proposals(served, status="accepted")]
    kg_sold = round(proposal["target_kg"] * 0.9)
    sold = {"kg_sold": kg_sold, "start": proposal["start"], "end": proposal["end"]}
    reported = served.post(f"/v1/proposals/{pid}/outcome", "platform", sold)
    assert reported.status_code == 200, reported.text
    assert reported.json()["status"] == "reported"
    assert reported.json()["outcome"]["kg_sold"] == kg_sold
    with served.sessions() as session:
        [history] = session.scalars(
            select(Campaign).where(
                Campaign.platform_id == "pdd",
                Campaign.crop == proposal["crop"],
                Campaign.region_id == proposal["region"],
                Campaign.start_on == date.fromisoformat(proposal["start"]),
                Campaign.source == "history",
            )
        )
        assert history.volume_kg == kg_sold
        assert history.end_on == date.fromisoformat(proposal["end"])
        assert history.uplift > 1.0, "measured against the platform's demand before it"
        after = estimate_uplifts(campaigns_frame(session)).for_campaign("pdd", proposal["crop"])
    assert after.n_campaigns == before.n_campaigns + 1
    again = served.post(f"/v1/proposals/{pid}/accept", "platform")
    assert again.status_code == 409
    [listed] = [p for p in _proposals(served, status="reported") if p["id"] == pid]
    assert listed["outcome"]["start"] == proposal["start"]


def test_an_unknown_proposal_is_a_404(served: Served) -> None:
    for pid in ("pdd.garlic.zhongmou.1999-01-01", "not-an-id"):
        response = served.post(f"/v1/proposals/{pid}/accept", "platform")
        assert response.status_code == 404


# --- the same API on InfluxDB and PostgreSQL -------------------------------------------------


@pytest.mark.services
def test_the_api_on_influxdb_and_postgresql_answers_as_on_the_embedded_defaults(
    served: Served, influx_store: Any, postgres_url: str, tmp_path: Path
) -> None:
    # The world backfilled into the real services, as tests/test_chain.py does: the API
    # reads through the store port and the registry only, so both must answer alike.
    from agrimatch.scenario import load_scenario
    from firmware_sim.backfill import BackfillOptions, StoreSink, backfill

    engine = make_engine(postgres_url)
    migrate(engine)
    sessions = registry_sessions(engine)
    options = BackfillOptions(seasons=3, interval_s=6 * 3600, realism=False)
    backfill(load_scenario("default"), influx_store, sessions, StoreSink(influx_store), options)
    tokens = _keys(sessions, "farm-01")
    app = create_app(api_settings(tmp_path), store=influx_store, sessions=sessions)
    try:
        with TestClient(app, raise_server_exceptions=False) as client, threadpool_limits(1):
            ran = client.post(
                "/v1/forecasts/run",
                json={"as_of": AS_OF.isoformat()},
                headers=bearer(tokens["admin"]),
            )
            assert ran.status_code == 200 and ran.json()["status"] == "ok", ran.text
            supply = client.get("/v1/supply", headers=bearer(tokens["platform"])).json()
            campaigns = client.get(
                "/v1/recommendations/campaigns", headers=bearer(tokens["admin"])
            ).json()
    finally:
        engine.dispose()
    embedded_supply = served.get("/v1/supply", "platform").json()
    embedded_campaigns = served.get("/v1/recommendations/campaigns", "admin").json()
    assert embedded_supply["run_id"] == served.run["run_id"], "the newest run is this module's"

    def by_key(rows: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {tuple(r[k] for k in keys): r for r in rows}

    served_weeks = by_key(supply["weeks"], "crop", "region", "week")
    embedded_weeks = by_key(embedded_supply["weeks"], "crop", "region", "week")
    assert served_weeks.keys() == embedded_weeks.keys()
    for key, week in served_weeks.items():
        for column in ("supply_kg_p10", "supply_kg_p50", "supply_kg_p90"):
            assert week[column] == pytest.approx(embedded_weeks[key][column], rel=1e-3, abs=1.0), (
                key,
                column,
            )
    keys = ("platform", "crop", "region", "start", "end")
    served_campaigns = by_key(campaigns["campaigns"], *keys)
    embedded_by_key = by_key(embedded_campaigns["campaigns"], *keys)
    assert served_campaigns.keys() == embedded_by_key.keys()
    for key, campaign in served_campaigns.items():
        for column in ("target_kg", "expected_absorbed_kg", "value_saved_cny"):
            assert campaign[column] == pytest.approx(
                embedded_by_key[key][column], rel=1e-3, abs=1.0
            ), (key, column, json.dumps(campaign))
