"""A pack posted over HTTP is stored exactly as the MQTT pipeline stores it."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from agrimatch.clock import RealClock
from agrimatch.contract.topics import DeviceAddress
from agrimatch.store.embedded import EmbeddedStore
from ingest import InboundMessage, MemoryDeadLetterSink, TelemetryPipeline
from tests.api.conftest import DEVICE_A, bearer, pack


def test_the_same_pack_over_http_and_mqtt_stores_the_same_points(
    client: TestClient, tokens: dict[str, str], store: EmbeddedStore, tmp_path: Path
) -> None:
    body = json.loads(pack(DEVICE_A, air_temp=21.5, air_rh=63.0, rain=0.4, battery=3.9))
    body[2]["v"] = -1.0  # negative rain: out of range, dead-lettered on both paths
    payload = json.dumps(body).encode()

    response = client.post("/v1/telemetry", content=payload, headers=bearer(tokens["device_a"]))
    assert response.status_code == 200

    # The MQTT side: the message ingest would get on the device's telemetry topic.
    mqtt_store = EmbeddedStore(tmp_path / "mqtt-telemetry.sqlite3")
    letters = MemoryDeadLetterSink()
    acked: list[bool] = []
    topic = DeviceAddress("garlic-coop-1", "north", DEVICE_A).telemetry_topic
    message = InboundMessage(topic, payload, RealClock().now(), ack=lambda: acked.append(True))
    try:
        report = TelemetryPipeline(mqtt_store, letters, RealClock()).process([message])
        assert report.acked and acked == [True]
        over_mqtt = mqtt_store.query_points("telemetry", 0, 2**62)
    finally:
        mqtt_store.close()

    over_http = store.query_points("telemetry", 0, 2**62)
    assert over_http == over_mqtt
    assert len(over_http) == 1 and set(over_http[0].fields) == {"air_temp", "air_rh", "battery"}
    http_letters = client.app.state.context.dead_letters.recent()  # type: ignore[attr-defined]
    assert [(x.reason, x.topic, x.records) for x in http_letters] == [
        (x.reason, x.topic, x.records) for x in letters.letters
    ]
    assert response.json()["records_rejected"] == [
        {"index": r["index"], "reason": r["reason"], "detail": r["detail"]}
        for r in letters.letters[0].records
    ]
