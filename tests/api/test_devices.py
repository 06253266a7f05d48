"""Devices: provisioning with a key shown once, config round trips, scopes, pages."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.broker_access import password_matches
from agrimatch.registry.audit import entries
from agrimatch.registry.models import Device
from agrimatch.store.embedded import EmbeddedStore
from tests.api.conftest import DEVICE_A, DEVICE_B, DEVICE_C, bearer, pack

CONFIG = {
    "interval_s": 300.0,
    "thresholds": {"soil_moisture_10cm": {"min": 15.0, "max": 45.0}, "air_temp": {"min": -2.0}},
}


def test_a_provisioned_device_gets_a_key_it_can_post_with(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore
) -> None:
    response = client.post(
        "/v1/devices",
        json={"farm_id": "garlic-coop-1", "field_id": "north"},
        headers=bearer(tokens["agronomist"]),
    )
    assert response.status_code == 201
    created = response.json()
    device = created["device"]
    assert device["id"] == "garlic-coop-1-north-d3"  # after the scenario's d1, d2
    assert response.headers["location"] == f"/v1/devices/{device['id']}"
    assert created["api_key"]["role"] == "device"
    posted = client.post(
        "/v1/telemetry",
        content=pack(device["id"], air_temp=18.0),
        headers=bearer(created["api_key"]["token"]),
    )
    assert posted.status_code == 200
    [point] = store.query_points("telemetry", 0, 2**62)
    assert point.tags["device"] == device["id"]


def test_a_camera_with_its_own_id_and_interval_is_provisioned(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/v1/devices",
        json={
            "farm_id": "garlic-coop-1",
            "field_id": "north",
            "kind": "camera",
            "interval_s": 7200,
        },
        headers=bearer(tokens["admin"]),
    )
    assert response.status_code == 201
    assert response.json()["device"]["id"] == "garlic-coop-1-north-cam"
    assert response.json()["device"]["interval_s"] == 7200.0
    again = client.post(
        "/v1/devices",
        json={"farm_id": "garlic-coop-1", "field_id": "north", "kind": "camera"},
        headers=bearer(tokens["admin"]),
    )
    assert again.status_code == 409


def test_an_agronomist_provisions_only_on_their_farms(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/v1/devices",
        json={"farm_id": "garlic-coop-2", "field_id": "east"},
        headers=bearer(tokens["agronomist"]),
    )
    assert response.status_code == 403
    assert "garlic-coop-2" in response.json()["detail"]


def test_a_device_on_an_unknown_field_is_refused_naming_the_field(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/v1/devices",
        json={"farm_id": "garlic-coop-1", "field_id": "south"},
        headers=bearer(tokens["admin"]),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "field_id"


def test_a_config_put_reads_back_and_becomes_the_devices_interval(
    client: TestClient, tokens: dict[str, str]
) -> None:
    put = client.put(
        f"/v1/devices/{DEVICE_A}/config", json=CONFIG, headers=bearer(tokens["agronomist"])
    )
    assert put.status_code == 200
    assert put.json()["published"] is False  # no broker configured
    assert "AGRIMATCH_MQTT_URL" in put.json()["publish_detail"]
    got = client.get(f"/v1/devices/{DEVICE_A}/config", headers=bearer(tokens["device_a"]))
    assert got.status_code == 200
    config = got.json()
    assert config["interval_s"] == 300.0
    assert config["thresholds"] == {
        "air_temp": {"min": -2.0, "max": None},
        "soil_moisture_10cm": {"min": 15.0, "max": 45.0},
    }
    assert config["updated_by"].startswith("agronomist (key ")
    assert config["config_topic"] == f"agrimatch/v1/garlic-coop-1/north/{DEVICE_A}/config"
    device = client.get(f"/v1/devices/{DEVICE_A}", headers=bearer(tokens["admin"])).json()
    assert device["interval_s"] == 300.0


def test_a_config_never_set_reads_as_the_registrys_interval(
    client: TestClient, tokens: dict[str, str]
) -> None:
    config = client.get(f"/v1/devices/{DEVICE_A}/config", headers=bearer(tokens["admin"])).json()
    assert config["interval_s"] == 60.0
    assert config["thresholds"] == {} and config["updated_at"] is None


def test_thresholds_outside_a_sensors_range_or_unknown_are_refused(
    client: TestClient, tokens: dict[str, str]
) -> None:
    for thresholds, words in (
        ({"air_rh": {"max": 120.0}}, "outside the sensor's range"),
        ({"wind": {"max": 3.0}}, "unknown sensor 'wind'"),
    ):
        response = client.put(
            f"/v1/devices/{DEVICE_A}/config",
            json={"interval_s": 60, "thresholds": thresholds},
            headers=bearer(tokens["admin"]),
        )
        assert response.status_code == 422
        assert words in response.json()["errors"][0]["detail"]


def test_who_may_read_and_set_a_config(client: TestClient, tokens: dict[str, str]) -> None:
    url = f"/v1/devices/{DEVICE_A}/config"
    assert client.get(url, headers=bearer(tokens["device_b"])).status_code == 403
    assert client.get(url, headers=bearer(tokens["platform"])).status_code == 403
    assert client.put(url, json=CONFIG, headers=bearer(tokens["device_a"])).status_code == 403
    other_farm = f"/v1/devices/{DEVICE_C}/config"
    assert client.get(other_farm, headers=bearer(tokens["agronomist"])).status_code == 403
    assert (
        client.put(other_farm, json=CONFIG, headers=bearer(tokens["agronomist"])).status_code == 403
    )
    assert client.put(other_farm, json=CONFIG, headers=bearer(tokens["admin"])).status_code == 200


def test_devices_are_listed_a_page_at_a_time_within_the_keys_farms(
    client: TestClient, tokens: dict[str, str]
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/devices", params=params, headers=bearer(tokens["agronomist"]))
        assert page.status_code == 200
        seen += [d["id"] for d in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [DEVICE_A, DEVICE_B]  # not garlic-coop-2's device
    everything = client.get("/v1/devices", headers=bearer(tokens["admin"])).json()
    assert [d["id"] for d in everything["items"]] == [DEVICE_A, DEVICE_B, DEVICE_C]


def test_a_cursor_this_api_did_not_hand_out_is_a_400_problem(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response = client.get("/v1/devices?cursor=bm9wZQ", headers=bearer(tokens["admin"]))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_provisioning_returns_an_mqtt_login_once_storing_only_its_mosquitto_hash(
    client: TestClient,
    tokens: dict[str, str],
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.post(
        "/v1/devices",
        json={"farm_id": "garlic-coop-1", "field_id": "north"},
        headers=bearer(tokens["agronomist"]),
    )
    assert response.status_code == 201
    created = response.json()
    mqtt = created["mqtt"]
    assert mqtt["username"] == created["device"]["id"]
    with sessions() as session:
        device = session.get(Device, mqtt["username"])
        assert device is not None and device.mqtt_password_hash is not None
        assert device.mqtt_password_hash.startswith("$7$101$")
        assert password_matches(mqtt["password"], device.mqtt_password_hash)
        [entry] = [e for e in entries(session) if e.action == "device.provision"]
    assert entry.target == mqtt["username"]
    assert mqtt["password"] not in (entry.detail or "") + caplog.text
    assert created["api_key"]["token"] not in caplog.text
    shown = client.get(f"/v1/devices/{mqtt['username']}", headers=bearer(tokens["admin"]))
    assert mqtt["password"] not in shown.text and "$7$" not in shown.text


def test_a_config_put_is_in_the_audit_log(
    client: TestClient, tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    url = f"/v1/devices/{DEVICE_A}/config"
    assert client.put(url, json=CONFIG, headers=bearer(tokens["agronomist"])).status_code == 200
    with sessions() as session:
        [entry] = [e for e in entries(session) if e.action == "device.config"]
    assert entry.target == DEVICE_A
    assert entry.actor  # the key's label: its name and id
