"""HTTP telemetry: stored through the ingest pipeline, record by record, idempotently."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from agrimatch.store.embedded import EmbeddedStore
from tests.api.conftest import DEVICE_A, bearer, pack

ALL_TIME = (0, 2**62)


def _stored(store: EmbeddedStore, device: str) -> list[tuple[int, dict[str, object]]]:
    points = store.query_points("telemetry", *ALL_TIME, tags={"device": device})
    return [(p.time_ms, dict(p.fields)) for p in points]


def test_a_pack_is_stored_under_the_address_of_the_keys_device(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    response = client.post(
        "/v1/telemetry",
        content=pack(DEVICE_A, air_temp=21.5, soil_moisture_10cm=27.5),
        headers=bearer(tokens["device_a"]) | {"content-type": "application/senml+json"},
    )
    assert response.status_code == 200
    assert response.json() == {"device": DEVICE_A, "readings_stored": 2, "records_rejected": []}
    [point] = store.query_points("telemetry", *ALL_TIME)
    assert dict(point.tags) == {"farm": "garlic-coop-1", "field": "north", "device": DEVICE_A}
    assert dict(point.fields) == {"air_temp": 21.5, "soil_moisture_10cm": 27.5}


def test_each_refused_record_is_listed_and_the_good_ones_stored(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    body = json.loads(pack(DEVICE_A, air_temp=21.5, air_rh=63.0))
    body[1]["v"] = 140.0  # relative humidity above 100 %
    body.append({"n": "wind_speed", "u": "m/s", "v": 3.0})
    response = client.post(
        "/v1/telemetry", content=json.dumps(body), headers=bearer(tokens["device_a"])
    )
    assert response.status_code == 200
    result = response.json()
    assert result["readings_stored"] == 1
    assert [(r["index"], r["reason"]) for r in result["records_rejected"]] == [
        (1, "out_of_range"),
        (2, "unknown_sensor"),
    ]
    assert "140.0" in result["records_rejected"][0]["detail"]
    [(_, fields)] = _stored(store, DEVICE_A)
    assert fields == {"air_temp": 21.5}


def test_the_same_pack_posted_twice_stores_the_same_points(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    payload = pack(DEVICE_A, air_temp=21.5, rain=0.2)
    first = client.post("/v1/telemetry", content=payload, headers=bearer(tokens["device_a"]))
    once = _stored(store, DEVICE_A)
    second = client.post("/v1/telemetry", content=payload, headers=bearer(tokens["device_a"]))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert _stored(store, DEVICE_A) == once
    assert len(once) == 1


def test_a_pack_that_is_not_json_is_refused_whole_with_its_reason(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    response = client.post(
        "/v1/telemetry", content=b"{not json", headers=bearer(tokens["device_a"])
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "not_json"
    assert _stored(store, DEVICE_A) == []


def test_a_pack_over_the_contracts_64_kib_is_refused_as_too_large(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/v1/telemetry", content=b" " * (65 * 1024), headers=bearer(tokens["device_a"])
    )
    assert response.status_code == 413
    assert response.json()["reason"] == "too_large"


def test_a_body_of_another_media_type_is_refused(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/v1/telemetry",
        content=pack(DEVICE_A, air_temp=21.5),
        headers=bearer(tokens["device_a"]) | {"content-type": "text/csv"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


def test_dead_letters_are_counted_by_reason(client: TestClient, tokens: dict[str, str]) -> None:
    body = json.loads(pack(DEVICE_A, air_temp=21.5))
    body[0]["v"] = 99.0  # above the air temperature range
    client.post("/v1/telemetry", content=json.dumps(body), headers=bearer(tokens["device_a"]))
    client.post("/v1/telemetry", content=b"[]", headers=bearer(tokens["device_a"]))
    context = client.app.state.context  # type: ignore[attr-defined]
    assert context.dead_letters.counts() == {"out_of_range": 1, "not_senml": 1}
    assert [letter.reason.value for letter in context.dead_letters.recent()] == [
        "out_of_range",
        "not_senml",
    ]
