"""Rows pushed over HTTP: harvest reports and platform demand keep their good rows, report
their bad ones, stay within the key's farms or platform, and store idempotently."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.auth import Role, create_key
from agrimatch.registry import Platform
from agrimatch.store.embedded import EmbeddedStore
from agrimatch.store.measurements import china_day_start_ms
from forecasting.demand_data import daily_demand_frame
from tests.api.conftest import PEPPER, bearer

PROBLEM_JSON = "application/problem+json"
HARVEST = {
    "farm": "garlic-coop-1",
    "field": "north",
    "season": 2025,
    "harvest_start": "2025-05-20",
    "harvest_end": "2025-06-05",
    "yield_t_ha": 15.0,
}
FIRST_DAY = date(2026, 3, 2)


def demand_rows(days: int = 3, **overrides: Any) -> list[dict[str, Any]]:
    return [
        {
            "crop": "garlic",
            "region": "zhongmou",
            "day": (FIRST_DAY + timedelta(days=n)).isoformat(),
            "quantity_kg": 500.0 + 10 * n,
            "orders": 40 + n,
            "price_cny_per_kg": 6.0,
        }
        | overrides
        for n in range(days)
    ]


def stored_demand(store: EmbeddedStore) -> list[tuple[Any, ...]]:
    frame = daily_demand_frame(
        store,
        china_day_start_ms(FIRST_DAY - timedelta(days=30)),
        china_day_start_ms(FIRST_DAY + timedelta(days=30)),
    )
    return [tuple(row) for row in frame.itertuples(index=False)]


# --- harvests ---------------------------------------------------------------------------


def test_good_harvest_rows_are_recorded_and_bad_ones_reported(
    client: TestClient, tokens: dict[str, str]
) -> None:
    rows = [
        HARVEST,
        HARVEST | {"farm": "garlic-coop-2", "field": "east"},  # not the agronomist's farm
        HARVEST | {"field": "nowhere"},
        HARVEST | {"field": "north", "season": 2024, "yield_t_ha": 150.0},
    ]
    response = client.post(
        "/v1/harvests", json={"rows": rows}, headers=bearer(tokens["agronomist"])
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["kind"] == "harvests"
    assert (report["rows"], report["rows_written"]) == (4, 1)
    assert report["counts"] == {"seasons (harvest recorded)": 1}
    bad = {(b["position"], b["column"]) for b in report["bad_rows"]}
    assert {(2, "farm"), (3, "field")} <= bad
    assert {b["position"] for b in report["bad_rows"]} == {2, 3, 4}
    outside = next(b for b in report["bad_rows"] if b["position"] == 2)
    assert "garlic-coop-1" in outside["reason"]  # names the key's farms
    seasons = client.get(
        "/v1/farms/garlic-coop-1/fields/north/seasons", headers=bearer(tokens["agronomist"])
    ).json()["seasons"]
    [season] = [s for s in seasons if s["season"] == 2025]
    assert season["yield_t_ha"] == 15.0 and season["quantity_t"] == pytest.approx(37.5)
    assert season["harvest_peak"] == "2025-05-28"  # the midpoint when not given
    assert season["reported_by"].startswith("agronomist (key ")


def test_a_harvest_posted_twice_is_one_report(client: TestClient, tokens: dict[str, str]) -> None:
    url = "/v1/farms/garlic-coop-1/fields/north/seasons"
    reports = []
    for _ in range(2):
        response = client.post(
            "/v1/harvests", json={"rows": [HARVEST]}, headers=bearer(tokens["admin"])
        )
        assert response.json()["rows_written"] == 1 and response.json()["bad_rows"] == []
        [season] = client.get(url, headers=bearer(tokens["admin"])).json()["seasons"]
        reports.append((season["reported_by"], season["reported_at"]))
    assert reports[0] == reports[1]  # the same report from the same key keeps its time


def test_a_harvested_seasons_plan_cannot_change_through_the_field(
    client: TestClient, tokens: dict[str, str]
) -> None:
    client.post("/v1/harvests", json={"rows": [HARVEST]}, headers=bearer(tokens["admin"]))
    response = client.patch(
        "/v1/farms/garlic-coop-1/fields/north",
        json={"area_ha": 9.0},
        headers=bearer(tokens["admin"]),
    )
    assert response.status_code == 422
    assert "has a harvest recorded" in response.json()["detail"]


def test_a_harvest_body_over_5000_rows_is_refused_whole(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/v1/harvests", json={"rows": [{"farm": "x"}] * 5001}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rows"


# --- demand -----------------------------------------------------------------------------


def test_demand_posted_twice_stores_the_same_points(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    body = {"rows": demand_rows()}
    first = client.post("/v1/demand", json=body, headers=bearer(tokens["platform"]))
    assert first.status_code == 200, first.text
    assert first.json()["rows_written"] == 3 and first.json()["counts"]["demand days"] == 3
    stored = stored_demand(store)
    second = client.post("/v1/demand", json=body, headers=bearer(tokens["platform"]))
    assert second.json() == first.json()
    assert stored_demand(store) == stored
    assert [(p, c, r, d, q) for p, c, r, d, q, *_ in stored] == [
        ("pdd", "garlic", "zhongmou", FIRST_DAY + timedelta(days=n), 500.0 + 10 * n)
        for n in range(3)
    ]
    assert len(store.query_points("demand", 0, 2**62)) == 3


def test_good_demand_rows_are_stored_and_bad_ones_reported(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    rows = demand_rows(4)
    rows[1]["price_cny_per_kg"] = 0
    rows[2]["region"] = "atlantis"
    rows[3]["platform"] = "meituan"  # another platform's sales
    response = client.post("/v1/demand", json={"rows": rows}, headers=bearer(tokens["platform"]))
    report = response.json()
    assert (report["rows"], report["rows_written"]) == (4, 1)
    assert [(b["position"], b["column"]) for b in report["bad_rows"]] == [
        (2, "price_cny_per_kg"),
        (3, "region"),
        (4, "platform"),
    ]
    assert "pdd" in report["bad_rows"][2]["reason"]
    assert [d for _, _, _, d, *_ in stored_demand(store)] == [FIRST_DAY]


def test_campaign_days_of_pushed_demand_become_history(
    client: TestClient, tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    rows = demand_rows(35)
    for row in rows[30:33]:
        row["campaign"] = "618"
        row["quantity_kg"] = 2000.0
    response = client.post("/v1/demand", json={"rows": rows}, headers=bearer(tokens["platform"]))
    report = response.json()
    assert report["counts"]["campaigns (history)"] == 1
    assert "uplift" in report["notes"][0]


def test_a_platform_key_cannot_act_for_another_platform(
    client: TestClient, tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        session.add(Platform(id="meituan", name="Meituan", campaign_lead_days=7))
    body = {"rows": demand_rows(1)}
    response = client.post(
        "/v1/demand", params={"platform": "meituan"}, json=body, headers=bearer(tokens["platform"])
    )
    assert response.status_code == 403
    assert "'pdd'" in response.json()["detail"]


def test_an_admin_pushes_demand_for_the_platform_it_names(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    body = {"rows": demand_rows(1)}
    unnamed = client.post("/v1/demand", json=body, headers=bearer(tokens["admin"]))
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["field"] == "platform"
    unknown = client.post(
        "/v1/demand", params={"platform": "nope"}, json=body, headers=bearer(tokens["admin"])
    )
    assert unknown.status_code == 404
    named = client.post(
        "/v1/demand", params={"platform": "pdd"}, json=body, headers=bearer(tokens["admin"])
    )
    assert named.json()["rows_written"] == 1
    assert stored_demand(store)[0][0] == "pdd"


@pytest.mark.parametrize("holder", ["agronomist", "device_a"])
def test_only_platform_and_admin_keys_push_demand(
    client: TestClient, tokens: dict[str, str], holder: str
) -> None:
    response = client.post(
        "/v1/demand", json={"rows": demand_rows(1)}, headers=bearer(tokens[holder])
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON


def test_demand_without_a_key_is_a_401_problem(client: TestClient) -> None:
    response = client.post("/v1/demand", json={"rows": demand_rows(1)})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON


def test_a_demand_body_over_5000_rows_is_refused_whole(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    response = client.post(
        "/v1/demand", json={"rows": demand_rows(5001)}, headers=bearer(tokens["platform"])
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rows"
    assert store.query_points("demand", 0, 2**62) == []


def test_a_second_platforms_key_pushes_its_own_demand(
    client: TestClient, sessions: sessionmaker[Session], store: EmbeddedStore
) -> None:
    with sessions.begin() as session:
        session.add(Platform(id="meituan", name="Meituan", campaign_lead_days=7))
        _, token = create_key(
            session, name="mt", role=Role.PLATFORM, pepper=PEPPER.encode(), platform_id="meituan"
        )
    response = client.post("/v1/demand", json={"rows": demand_rows(1)}, headers=bearer(token))
    assert response.json()["rows_written"] == 1
    assert {p.tags["platform"] for p in store.query_points("demand", 0, 2**62)} == {"meituan"}
