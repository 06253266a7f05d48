"""Ingest checks a device's registered place: a device cannot lie about where it is.

Through the real path (Mosquitto → ``agrimatch`` ingest as built by the CLI's
wiring → InfluxDB, with a SQLite registry) and, for the cache, on the unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agrimatch.cli.wiring import build_ingest
from agrimatch.contract.reasons import Reason
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint
from agrimatch.registry import database_url, make_engine, migrate, session_factory, upsert_scenario
from agrimatch.scenario import parse_scenario
from agrimatch.settings import Settings
from agrimatch.store.influx import InfluxStore
from ingest.mqtt_consumer import MqttIngest
from ingest.places import RegisteredPlaces
from tests.api.conftest import DEVICE_A, SCENARIO, pack
from tests.loadgen import all_points, wait_until
from tests.services import MosquittoServer

OWN_FARM, OWN_FIELD = "garlic-coop-1", "north"


# -- the cache, on the unit ------------------------------------------------------------


class CountingLookup:
    def __init__(self, places: dict[str, tuple[str, str]]) -> None:
        self.places = places
        self.calls = 0
        self.failing = False

    def __call__(self, device: str) -> tuple[str, str] | None:
        self.calls += 1
        if self.failing:
            raise ConnectionError("registry down")
        return self.places.get(device)


def test_a_device_is_looked_up_once_per_ttl_not_once_per_message() -> None:
    lookup = CountingLookup({"dev-a": ("farm1", "field1")})
    places = RegisteredPlaces(lookup, ttl_s=3600)
    for _ in range(1000):
        assert places.problem(DeviceAddress("farm1", "field1", "dev-a")) is None
        assert places.problem(DeviceAddress("farm1", "field1", "dev-z")) is not None
    assert lookup.calls == 2


def test_unknown_and_moved_devices_get_their_reasons() -> None:
    places = RegisteredPlaces(CountingLookup({"dev-a": ("farm1", "field1")}))
    unknown = places.problem(DeviceAddress("farm1", "field1", "dev-z"))
    moved = places.problem(DeviceAddress("farm9", "field9", "dev-a"))
    assert unknown is not None and unknown.reason is Reason.UNKNOWN_DEVICE
    assert moved is not None and moved.reason is Reason.WRONG_PLACE
    assert "farm1/field1" in moved.detail


def test_a_registry_outage_keeps_the_last_answer_and_lets_a_never_seen_device_through() -> None:
    lookup = CountingLookup({"dev-a": ("farm1", "field1")})
    places = RegisteredPlaces(lookup, ttl_s=0.001)
    assert places.problem(DeviceAddress("farm1", "field1", "dev-a")) is None
    lookup.failing = True
    wrong = places.problem(DeviceAddress("farm9", "field9", "dev-a"))
    assert wrong is not None and wrong.reason is Reason.WRONG_PLACE  # from the last answer
    assert places.problem(DeviceAddress("farm1", "field1", "dev-new")) is None
    assert places.lookup_failures >= 1


# -- through the real path -------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ingest(
    tmp_path: Path, broker: MosquittoServer, influx_store: InfluxStore
) -> Iterator[MqttIngest]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        ingest_check_place=True,
        ingest_linger_ms=50,
    )
    engine = make_engine(database_url(settings))
    migrate(engine)
    with session_factory(engine).begin() as session:
        upsert_scenario(session, parse_scenario(SCENARIO))
    engine.dispose()
    service = build_ingest(
        settings, influx_store, endpoint=MqttEndpoint.from_url(broker.url), client_id="places"
    )
    service.start()
    assert service.connected.wait(10), "ingest did not connect"
    yield service
    service.stop()


def publish(broker: MosquittoServer, items: list[tuple[str, bytes]]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="liar")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for topic, payload in items:
            client.publish(topic, payload, qos=1).wait_for_publish(20)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.services
def test_a_device_publishing_under_another_farm_and_field_is_dead_lettered_not_stored(
    broker: MosquittoServer, ingest: MqttIngest, influx_store: InfluxStore
) -> None:
    elsewhere = DeviceAddress("farm9", "field9", DEVICE_A)
    own = DeviceAddress(OWN_FARM, OWN_FIELD, DEVICE_A)
    unknown = DeviceAddress(OWN_FARM, OWN_FIELD, "dev-nobody")
    publish(
        broker,
        [
            (elsewhere.telemetry_topic, pack(DEVICE_A, air_temp=30.0)),
            (unknown.telemetry_topic, pack("dev-nobody", air_temp=31.0)),
            (own.telemetry_topic, pack(DEVICE_A, air_temp=18.0)),
        ],
    )
    assert wait_until(lambda: ingest.metrics.snapshot().messages_acked == 3, 30)
    assert ingest.metrics.snapshot().dead_letters_by_reason == {
        "wrong_place": 1,
        "unknown_device": 1,
    }
    [point] = all_points(influx_store)  # no new series for farm9/field9
    assert (point.tags["farm"], point.tags["field"], point.tags["device"]) == (
        OWN_FARM,
        OWN_FIELD,
        DEVICE_A,
    )
    assert point.fields == {"air_temp": 18.0}
