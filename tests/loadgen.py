"""Test traffic: deterministic SenML messages and a QoS 1 publisher for real brokers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import paho.mqtt.client as paho

from agrimatch.contract.telemetry import Reading, encode_telemetry
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from agrimatch.store import Point, TelemetryStore

SENSORS_UNITS = (("air_temp", 20.0), ("air_rh", 55.0), ("soil_moisture_10cm", 30.0))


@dataclass(frozen=True, slots=True)
class Sent:
    address: DeviceAddress
    time_ms: int
    values: dict[str, float]
    payload: bytes


def make_messages(
    devices: int, per_device: int, start_s: float, step_s: float = 60.0
) -> list[Sent]:
    """``devices × per_device`` packs, each a distinct point with distinct values."""
    out = []
    for d in range(devices):
        address = DeviceAddress(f"farm-{d % 5}", f"field-{d % 11}", f"dev-{d:04d}")
        for i in range(per_device):
            t_ms = int((start_s + i * step_s) * 1000)
            values = {name: round(base + (d * 7 + i) % 13 * 0.5, 2) for name, base in SENSORS_UNITS}
            readings = [Reading(n, t_ms, v) for n, v in values.items()]
            out.append(Sent(address, t_ms, values, encode_telemetry(address.device, readings)))
    return out


class Publisher:
    """A QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, endpoint: MqttEndpoint) -> None:
        self.client = make_paho_client(endpoint, f"test-pub-{uuid.uuid4().hex[:8]}")
        self.client.max_queued_messages_set(0)
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def publish_all(self, messages: Iterable[Sent], pause_every: int = 0, pause_s: float = 0.0):
        infos = []
        for i, m in enumerate(messages):
            infos.append(self.publish(m.address.telemetry_topic, m.payload))
            if pause_every and i % pause_every == pause_every - 1:
                time.sleep(pause_s)
        for info in infos:
            info.wait_for_publish(30)
        assert all(info.is_published() for info in infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(predicate, timeout_s: float, step_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def all_points(store: TelemetryStore) -> list[Point]:
    return store.query_points("telemetry", 0, int(4e12))


def assert_stored_exactly_once(store: TelemetryStore, sent: list[Sent]) -> None:
    """Every sent reading is in the store with its value, and nothing else is."""
    points = all_points(store)
    by_key = {(p.tags["device"], p.time_ms): p for p in points}
    assert len(by_key) == len(points), "a point is stored twice"
    missing = [m for m in sent if (m.address.device, m.time_ms) not in by_key]
    assert not missing, f"{len(missing)} of {len(sent)} messages lost, e.g. {missing[:3]}"
    for m in sent:
        point = by_key[(m.address.device, m.time_ms)]
        assert point.tags["farm"] == m.address.farm and point.tags["field"] == m.address.field
        assert {k: float(v) for k, v in point.fields.items()} == m.values
    assert len(points) == len({(m.address.device, m.time_ms) for m in sent})


def stored_count(store: TelemetryStore) -> int:
    return len(all_points(store))
