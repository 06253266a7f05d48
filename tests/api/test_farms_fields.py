"""Farms and fields: scopes (absent when outside for reads, forbidden for writes), writes
checked as import rows, seasons, the newest telemetry day and telemetry in buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DEVICE_A, DEVICE_B, bearer, pack

PROBLEM_JSON = "application/problem+json"
NEW_FIELD = {
    "field": "south",
    "crop": "garlic",
    "area_ha": 1.2,
    "planted_on": "2025-10-03",
    "soil": "loam",
    "lat": 34.71,
    "lon": 113.91,
}

# Every agronomist route, with a body where it takes one: for the role checks.
AGRONOMIST_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/farms", None),
    ("POST", "/v1/farms", {"farm": "x", "region": "zhongmou", "lat": 1.0, "lon": 1.0}),
    ("GET", "/v1/farms/garlic-coop-1", None),
    ("PATCH", "/v1/farms/garlic-coop-1", {"lat": 34.0}),
    ("DELETE", "/v1/farms/garlic-coop-1", None),
    ("GET", "/v1/fields", None),
    ("GET", "/v1/farms/garlic-coop-1/fields", None),
    ("POST", "/v1/farms/garlic-coop-1/fields", NEW_FIELD),
    ("GET", "/v1/farms/garlic-coop-1/fields/north", None),
    ("PATCH", "/v1/farms/garlic-coop-1/fields/north", {"soil": "clay"}),
    ("DELETE", "/v1/farms/garlic-coop-1/fields/north", None),
    ("GET", "/v1/farms/garlic-coop-1/fields/north/seasons", None),
    ("GET", "/v1/farms/garlic-coop-1/fields/north/telemetry", None),
    ("GET", "/v1/farms/garlic-coop-1/fields/north/forecast", None),
    ("POST", "/v1/harvests", {"rows": [{"farm": "garlic-coop-1"}]}),
    ("GET", "/v1/balance", None),
    ("GET", "/v1/recommendations/campaigns", None),
    ("GET", "/v1/recommendations/planting", None),
    ("POST", "/v1/whatif", {}),
    ("POST", "/v1/forecasts/run", {}),
]


def _call(client: TestClient, method: str, path: str, body: Any, token: str | None) -> Any:
    headers = bearer(token) if token else {}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), AGRONOMIST_ROUTES)
@pytest.mark.parametrize("holder", ["device_a", "platform"])
def test_device_and_platform_keys_are_forbidden_the_agronomist_routes(
    client: TestClient,
    tokens: dict[str, str],
    holder: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    response = _call(client, method, path, body, tokens[holder])
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "role" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body"), AGRONOMIST_ROUTES)
def test_the_agronomist_routes_without_a_key_are_a_401_problem(
    client: TestClient, method: str, path: str, body: Any
) -> None:
    response = _call(client, method, path, body, None)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON


def test_an_agronomist_lists_only_the_farms_of_its_key(
    client: TestClient, tokens: dict[str, str]
) -> None:
    mine = client.get("/v1/farms", headers=bearer(tokens["agronomist"])).json()
    assert [f["farm"] for f in mine["items"]] == ["garlic-coop-1"]
    assert mine["items"][0] == {"farm": "garlic-coop-1", "region": "zhongmou", "lat": 34.7,
                                "lon": 113.9}  # fmt: skip
    every = client.get("/v1/farms", params={"limit": 1}, headers=bearer(tokens["admin"])).json()
    assert [f["farm"] for f in every["items"]] == ["garlic-coop-1"]
    rest = client.get(
        "/v1/farms", params={"cursor": every["next_cursor"]}, headers=bearer(tokens["admin"])
    ).json()
    assert [f["farm"] for f in rest["items"]] == ["garlic-coop-2"] and rest["next_cursor"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/farms/{farm}",
        "/v1/farms/{farm}/fields",
        "/v1/farms/{farm}/fields/east",
        "/v1/farms/{farm}/fields/east/seasons",
        "/v1/farms/{farm}/fields/east/telemetry",
        "/v1/farms/{farm}/fields/east/forecast",
    ],
)
def test_a_farm_outside_the_scope_reads_as_one_that_does_not_exist(
    client: TestClient, tokens: dict[str, str], path: str
) -> None:
    outside = client.get(path.format(farm="garlic-coop-2"), headers=bearer(tokens["agronomist"]))
    absent = client.get(path.format(farm="no-such-farm"), headers=bearer(tokens["agronomist"]))
    assert outside.status_code == absent.status_code == 404
    assert outside.json()["detail"].replace("garlic-coop-2", "X") == absent.json()[
        "detail"
    ].replace("no-such-farm", "X")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/v1/farms/garlic-coop-2", {"lat": 34.0}),
        ("DELETE", "/v1/farms/garlic-coop-2", None),
        ("POST", "/v1/farms/garlic-coop-2/fields", NEW_FIELD),
        ("PATCH", "/v1/farms/garlic-coop-2/fields/east", {"soil": "clay"}),
        ("DELETE", "/v1/farms/garlic-coop-2/fields/east", None),
    ],
)
def test_changing_a_farm_outside_the_scope_is_forbidden_naming_the_scope(
    client: TestClient, tokens: dict[str, str], method: str, path: str, body: Any
) -> None:
    response = _call(client, method, path, body, tokens["agronomist"])
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    detail = response.json()["detail"]
    assert "garlic-coop-1" in detail and "garlic-coop-2" in detail


def test_only_an_admin_creates_a_farm_and_a_new_region_comes_with_it(
    client: TestClient, tokens: dict[str, str]
) -> None:
    farm = {"farm": "pear-coop-1", "region": "korla", "lat": 41.7, "lon": 86.1,
            "region_name": "Korla, Xinjiang", "elevation_m": 930}  # fmt: skip
    refused = client.post("/v1/farms", json=farm, headers=bearer(tokens["agronomist"]))
    assert refused.status_code == 403 and "role admin" in refused.json()["detail"]
    created = client.post("/v1/farms", json=farm, headers=bearer(tokens["admin"]))
    assert created.status_code == 201
    assert created.headers["location"] == "/v1/farms/pear-coop-1"
    assert created.json() == {"farm": "pear-coop-1", "region": "korla", "lat": 41.7, "lon": 86.1}
    again = client.post("/v1/farms", json=farm, headers=bearer(tokens["admin"]))
    assert again.status_code == 409
    read = client.get("/v1/farms/pear-coop-1", headers=bearer(tokens["admin"]))
    assert read.json()["region"] == "korla"


def test_a_farm_is_checked_as_a_row_of_a_farms_import(
    client: TestClient, tokens: dict[str, str]
) -> None:
    for farm, field, words in (
        ({"region": "zhongmou", "lat": 134.0}, "lat", "outside -90..90"),
        ({"region": "somewhere-new", "lat": 34.0}, "elevation_m", "region somewhere-new is new"),
    ):
        response = client.post(
            "/v1/farms", json={"farm": "coop-9", "lon": 113.0} | farm,
            headers=bearer(tokens["admin"]),
        )  # fmt: skip
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM_JSON
        [error] = response.json()["errors"]
        assert error["field"] == field and words in error["detail"]


def test_an_agronomist_moves_its_farm(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.patch(
        "/v1/farms/garlic-coop-1", json={"lat": 34.75}, headers=bearer(tokens["agronomist"])
    )
    assert response.status_code == 200
    assert response.json()["lat"] == 34.75 and response.json()["lon"] == 113.9


def test_a_field_is_created_with_its_season_and_reads_back(
    client: TestClient, tokens: dict[str, str]
) -> None:
    token = bearer(tokens["agronomist"])
    created = client.post("/v1/farms/garlic-coop-1/fields", json=NEW_FIELD, headers=token)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/farms/garlic-coop-1/fields/south"
    field = client.get("/v1/farms/garlic-coop-1/fields/south", headers=token).json()
    assert field == {
        "farm": "garlic-coop-1",
        "field": "south",
        "region": "zhongmou",
        "crop": "garlic",
        "area_ha": 1.2,
        "planted_on": "2025-10-03",
        "soil": "loam",
        "lat": 34.71,
        "lon": 113.91,
        "latest": None,
    }
    seasons = client.get("/v1/farms/garlic-coop-1/fields/south/seasons", headers=token).json()
    [season] = seasons["seasons"]
    assert season["season"] == 2026  # garlic sown in October is harvested the next year
    assert season["yield_t_ha"] is None and season["reported_by"] is None
    again = client.post("/v1/farms/garlic-coop-1/fields", json=NEW_FIELD, headers=token)
    assert again.status_code == 409


def test_a_field_is_checked_as_a_row_of_a_fields_import(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/v1/farms/garlic-coop-1/fields",
        json=NEW_FIELD | {"crop": "garlc", "area_ha": 0},
        headers=bearer(tokens["agronomist"]),
    )
    assert response.status_code == 422
    errors = {e["field"]: e["detail"] for e in response.json()["errors"]}
    assert "did you mean garlic" in errors["crop"]
    assert "area_ha" in errors


def test_a_field_change_plans_its_newest_season(client: TestClient, tokens: dict[str, str]) -> None:
    token = bearer(tokens["agronomist"])
    changed = client.patch(
        "/v1/farms/garlic-coop-1/fields/north", json={"area_ha": 3.0, "soil": "clay"},
        headers=token,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["area_ha"] == 3.0 and changed.json()["soil"] == "clay"
    later = client.patch(
        "/v1/farms/garlic-coop-1/fields/north", json={"planted_on": "2025-10-02"}, headers=token
    )
    assert later.json()["planted_on"] == "2025-10-02"
    seasons = client.get("/v1/farms/garlic-coop-1/fields/north/seasons", headers=token).json()
    assert [(s["season"], s["area_ha"]) for s in seasons["seasons"]] == [(2025, 3.0), (2026, 3.0)]


def test_a_deleted_field_takes_its_seasons_devices_and_their_keys(
    client: TestClient, tokens: dict[str, str]
) -> None:
    deleted = client.delete("/v1/farms/garlic-coop-2/fields/east", headers=bearer(tokens["admin"]))
    assert deleted.status_code == 200
    assert deleted.json() == {"farm": "garlic-coop-2", "field": "east", "fields": 1,
                              "seasons": 1, "devices": 1}  # fmt: skip
    gone = client.get("/v1/farms/garlic-coop-2/fields/east", headers=bearer(tokens["admin"]))
    assert gone.status_code == 404
    device_c = client.get("/v1/devices/garlic-coop-2-east-d1", headers=bearer(tokens["device_c"]))
    assert device_c.status_code == 401  # its key went with it


def test_a_deleted_farm_takes_its_fields(client: TestClient, tokens: dict[str, str]) -> None:
    deleted = client.delete("/v1/farms/garlic-coop-1", headers=bearer(tokens["agronomist"]))
    assert deleted.status_code == 200
    assert deleted.json()["fields"] == 1 and deleted.json()["devices"] == 2
    assert client.get("/v1/farms/garlic-coop-1", headers=bearer(tokens["admin"])).status_code == 404


def _post_readings(client: TestClient, tokens: dict[str, str]) -> None:
    for device, token, values in (
        (DEVICE_A, tokens["device_a"], {"air_temp": 20.0, "soil_moisture_10cm": 30.0,
                                        "rain": 1.5}),
        (DEVICE_B, tokens["device_b"], {"air_temp": 22.0, "rain": 0.5}),
    ):  # fmt: skip
        posted = client.post("/v1/telemetry", content=pack(device, **values), headers=bearer(token))
        assert posted.status_code == 200


def test_each_field_carries_its_newest_day_of_telemetry_or_null(
    client: TestClient, tokens: dict[str, str]
) -> None:
    _post_readings(client, tokens)
    page = client.get("/v1/fields", headers=bearer(tokens["admin"])).json()
    by_field = {(f["farm"], f["field"]): f for f in page["items"]}
    assert set(by_field) == {("garlic-coop-1", "north"), ("garlic-coop-2", "east")}
    latest = by_field[("garlic-coop-1", "north")]["latest"]
    assert latest["readings"]["air_temp"] == pytest.approx(21.0)  # both devices' mean
    assert latest["readings"]["soil_moisture_10cm"] == pytest.approx(30.0)
    assert latest["readings"]["rain"] == pytest.approx(1.0)  # each gauge's total, averaged
    day = datetime.fromisoformat(latest["time"])
    assert day.utcoffset() == timedelta(hours=8) and (day.hour, day.minute) == (0, 0)
    assert datetime.now(UTC) - day < timedelta(days=1, minutes=5)
    assert by_field[("garlic-coop-2", "east")]["latest"] is None
    mine = client.get("/v1/fields", headers=bearer(tokens["agronomist"])).json()
    assert [(f["farm"], f["field"]) for f in mine["items"]] == [("garlic-coop-1", "north")]


def test_fields_are_listed_a_page_at_a_time(client: TestClient, tokens: dict[str, str]) -> None:
    first = client.get("/v1/fields", params={"limit": 1}, headers=bearer(tokens["admin"])).json()
    second = client.get(
        "/v1/fields", params={"cursor": first["next_cursor"]}, headers=bearer(tokens["admin"])
    ).json()
    seen = [(f["farm"], f["field"]) for f in first["items"] + second["items"]]
    assert seen == [("garlic-coop-1", "north"), ("garlic-coop-2", "east")]
    assert second["next_cursor"] is None


def test_telemetry_comes_back_as_means_per_bucket(
    client: TestClient, tokens: dict[str, str]
) -> None:
    _post_readings(client, tokens)
    response = client.get(
        "/v1/farms/garlic-coop-1/fields/north/telemetry",
        params={"every": "1h", "sensors": "air_temp,rain"},
        headers=bearer(tokens["agronomist"]),
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["farm"], body["field"], body["every"]) == ("garlic-coop-1", "north", "1h")
    assert body["sensors"] == ["air_temp", "rain"]
    [point] = body["points"]
    assert set(point) == {"time", "air_temp", "rain"}
    assert point["air_temp"] == pytest.approx(21.0) and point["rain"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"every": "1h", "from": "2025-01-01T00:00:00+08:00", "to": "2026-01-01T00:00:00+08:00"},
         "every"),
        ({"sensors": "air_temp,wind"}, "sensors"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"every": "2h"}, "every"),
    ],
)  # fmt: skip
def test_a_telemetry_query_it_cannot_answer_is_a_422_naming_the_parameter(
    client: TestClient, tokens: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = client.get(
        "/v1/farms/garlic-coop-1/fields/north/telemetry",
        params=params,
        headers=bearer(tokens["agronomist"]),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert [e["field"] for e in response.json()["errors"]] == [field]
