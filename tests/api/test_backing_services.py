"""The API against real InfluxDB and Mosquitto: a store outage, config published retained."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.mqtt import MqttEndpoint, make_paho_client
from agrimatch.store.embedded import EmbeddedStore
from agrimatch.store.influx import InfluxStore
from api import create_app
from tests.api.conftest import DEVICE_A, api_settings, bearer, pack
from tests.services import InfluxServer, MosquittoServer, ServiceNotInstalled, free_port

CONFIG = {"interval_s": 300.0, "thresholds": {"soil_moisture_10cm": {"min": 15.0, "max": 45.0}}}
CONFIG_TOPIC = f"agrimatch/v1/garlic-coop-1/north/{DEVICE_A}/config"


def _around_now() -> tuple[int, int]:
    """A window around now in ms (InfluxQL times are int64 nanoseconds: no 2**62 ms)."""
    now_ms = int(time.time() * 1000)
    return now_ms - 86_400_000, now_ms + 86_400_000


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxServer]:
    """An influxd of this test's own: stopping it disturbs no other test."""
    try:
        server = InfluxServer(tmp_path / "influxdb")
    except ServiceNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.services
def test_while_influxdb_is_down_a_pack_gets_503_with_retry_after_and_nothing_is_stored(
    influx: InfluxServer,
    tmp_path: Path,
    sessions: sessionmaker[Session],
    tokens: dict[str, str],
) -> None:
    store = InfluxStore(influx.url, "agrimatch_api_test")
    settings = api_settings(tmp_path, influx_url=influx.url, api_retry_after_s=7)
    payload = pack(DEVICE_A, air_temp=20.5)
    headers = bearer(tokens["device_a"])
    try:
        with TestClient(create_app(settings, store=store, sessions=sessions)) as client:
            influx.stop()
            refused = client.post("/v1/telemetry", content=payload, headers=headers)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "7"
            assert refused.headers["content-type"] == "application/problem+json"
            assert "nothing was stored" in refused.json()["detail"]
            not_ready = client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["detail"] == "not ready: store unavailable"
            assert not_ready.json()["checks"]["registry"] == "ok"
            dead = client.app.state.context.dead_letters.counts()  # type: ignore[attr-defined]
            assert dead == {}  # refused, not dead-lettered: the device sends it again

            influx.start()
            assert store.query_points("telemetry", *_around_now()) == []
            accepted = client.post("/v1/telemetry", content=payload, headers=headers)
            assert accepted.status_code == 200
            assert client.get("/readyz").status_code == 200
        [point] = store.query_points("telemetry", *_around_now())
        assert point.fields == {"air_temp": 20.5}
    finally:
        store.close()


def _retained(endpoint: MqttEndpoint, topic: str, timeout_s: float = 5.0) -> bytes | None:
    received: list[bytes] = []
    done = threading.Event()
    watcher = make_paho_client(endpoint, "api-test-config-watcher")

    def on_message(client: object, userdata: object, message: object) -> None:
        received.append(message.payload)  # type: ignore[attr-defined]
        done.set()

    watcher.on_message = on_message
    watcher.connect(endpoint.host, endpoint.port)
    watcher.subscribe(topic, qos=1)
    watcher.loop_start()
    try:
        done.wait(timeout_s)
    finally:
        watcher.disconnect()
        watcher.loop_stop()
    return received[0] if received else None


@pytest.mark.services
def test_a_config_put_is_published_retained_on_the_devices_config_topic(
    mosquitto_server: MosquittoServer,
    tmp_path: Path,
    store: EmbeddedStore,
    sessions: sessionmaker[Session],
    tokens: dict[str, str],
) -> None:
    settings = api_settings(tmp_path, mqtt_url=mosquitto_server.url)
    endpoint = MqttEndpoint.from_url(mosquitto_server.url)
    try:
        with TestClient(create_app(settings, store=store, sessions=sessions)) as client:
            put = client.put(
                f"/v1/devices/{DEVICE_A}/config", json=CONFIG, headers=bearer(tokens["admin"])
            )
            assert put.status_code == 200
            assert put.json()["published"] is True
            assert client.get("/readyz").json()["checks"]["broker"] == "ok"
        # A device that connects later still gets it: it is retained.
        retained = _retained(endpoint, CONFIG_TOPIC)
        assert retained is not None
        assert json.loads(retained) == CONFIG
    finally:
        # The broker is shared by the session: clear the retained message.
        cleaner = make_paho_client(endpoint, "api-test-config-cleaner")
        cleaner.connect(endpoint.host, endpoint.port)
        cleaner.loop_start()
        cleaner.publish(CONFIG_TOPIC, b"", qos=1, retain=True).wait_for_publish(5)
        cleaner.disconnect()
        cleaner.loop_stop()


def test_with_the_broker_unreachable_a_config_is_stored_unpublished_and_readyz_names_it(
    tmp_path: Path, store: EmbeddedStore, sessions: sessionmaker[Session], tokens: dict[str, str]
) -> None:
    # A port nothing listens on: the connection is refused, as by a broker that is down.
    settings = api_settings(tmp_path, mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    with TestClient(create_app(settings, store=store, sessions=sessions)) as client:
        put = client.put(
            f"/v1/devices/{DEVICE_A}/config", json=CONFIG, headers=bearer(tokens["admin"])
        )
        assert put.status_code == 200
        assert put.json()["published"] is False
        assert "unreachable" in put.json()["publish_detail"]
        got = client.get(f"/v1/devices/{DEVICE_A}/config", headers=bearer(tokens["admin"]))
        assert got.json()["interval_s"] == 300.0
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["detail"] == "not ready: broker unavailable"
