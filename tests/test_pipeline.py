"""The transport-independent pipeline, on the embedded store (no services)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

import pytest

from agrimatch.clock import SimulatedClock
from agrimatch.contract.reasons import Reason
from agrimatch.contract.telemetry import Reading, encode_telemetry
from agrimatch.contract.topics import DeviceAddress
from agrimatch.store import Aggregation, Point, StoreUnavailable, WriteResult
from agrimatch.store.embedded import EmbeddedStore
from ingest import InboundMessage, MemoryDeadLetterSink, TelemetryPipeline
from ingest.pipeline import RetryPolicy

NOW = 1_764_072_000.0  # 2025-11-25 12:00 UTC
ADDRESS = DeviceAddress("farm-1", "field-1", "dev-1")


def message(payload: bytes, acks: list[int] | None = None, tag: int = 0, topic: str | None = None):
    ack = (lambda: acks.append(tag)) if acks is not None else None
    return InboundMessage(topic or ADDRESS.telemetry_topic, payload, NOW, ack)


def pack(t: float = NOW, **values: float) -> bytes:
    units = {"air_temp": "Cel", "air_rh": "%RH", "soil_moisture_10cm": "%"}
    assert set(values) <= set(units)
    return encode_telemetry(
        ADDRESS.device, [Reading(name, int(t * 1000), v) for name, v in values.items()]
    )


class FlakyStore:
    """Wraps a real store; fails the first ``failures`` writes as if the server were down."""

    def __init__(self, inner: EmbeddedStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.attempts = 0

    def write(self, points: Sequence[Point]) -> WriteResult:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StoreUnavailable("connection refused")
        return self.inner.write(points)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@pytest.fixture
def store(tmp_path):
    s = EmbeddedStore(tmp_path / "t.sqlite3")
    yield s
    s.close()


@pytest.fixture
def sink():
    return MemoryDeadLetterSink()


def pipeline_for(store, sink, **kw):
    retry = RetryPolicy(initial_s=0.01, max_s=0.02)
    return TelemetryPipeline(store, sink, SimulatedClock(NOW), retry=retry, **kw)


def stored_points(store) -> list[Point]:
    return store.query_points("telemetry", 0, int(NOW * 1000) + 10**9)


def test_a_valid_message_is_stored_with_its_tags_and_sample_time(store, sink):
    acks: list[int] = []
    report = pipeline_for(store, sink).process([message(pack(air_temp=21.5, air_rh=60), acks)])
    assert report.acked and acks == [0]
    [point] = stored_points(store)
    assert point.tags == {"farm": "farm-1", "field": "field-1", "device": "dev-1"}
    assert point.fields == {"air_temp": 21.5, "air_rh": 60.0}
    assert point.time_ms == int(NOW * 1000)
    assert sink.letters == []


def test_acks_follow_arrival_order_after_the_batch_is_stored(store, sink):
    acks: list[int] = []
    seen_when_acked: list[int] = []

    def ack(i: int):
        def _ack():
            seen_when_acked.append(len(stored_points(store)))
            acks.append(i)

        return _ack

    msgs = [
        InboundMessage(ADDRESS.telemetry_topic, pack(NOW - i, air_temp=10 + i), NOW, ack(i))
        for i in range(5)
    ]
    pipeline_for(store, sink).process(msgs)
    assert acks == [0, 1, 2, 3, 4]
    assert seen_when_acked == [5] * 5  # every point was durable before the first ack


def test_a_redelivered_message_adds_no_point(store, sink):
    pipe = pipeline_for(store, sink)
    payload = pack(air_temp=3.0)
    pipe.process([message(payload)])
    pipe.process([message(payload)])
    [row] = store.aggregate("telemetry", ["air_temp"], Aggregation.COUNT, 0, 2 * int(NOW * 1000))
    assert row.values["air_temp"] == 1


def test_garbage_is_dead_lettered_with_reason_and_the_good_messages_around_it_are_stored(
    store, sink
):
    acks: list[int] = []
    msgs = [
        message(pack(NOW - 60, air_temp=1.0), acks, 0),
        message(b"\x00\xffgarbage", acks, 1),
        message(pack(NOW, air_temp=2.0), acks, 2),
    ]
    report = pipeline_for(store, sink).process(msgs)
    assert acks == [0, 1, 2]  # the bad one is acked too, once its dead letter is accepted
    assert [o.accepted for o in report.outcomes] == [True, False, True]
    assert len(stored_points(store)) == 2
    [letter] = sink.letters
    assert letter.reason is Reason.NOT_JSON
    assert letter.dead_topic == "agrimatch/v1/_dead/not_json"
    body = json.loads(letter.to_json())
    assert body["topic"] == ADDRESS.telemetry_topic and body["payload_encoding"] == "base64"


def test_a_pack_with_some_bad_records_keeps_the_good_ones(store, sink):
    doc = json.loads(pack(air_temp=20.0, air_rh=50.0))
    doc.append({"n": "air_temp", "u": "Cel", "v": 999, "t": -60})
    doc.append({"n": "no_such_sensor", "u": "Cel", "v": 1})
    pipe = pipeline_for(store, sink)
    report = pipe.process([message(json.dumps(doc).encode())])
    assert report.outcomes[0].readings_stored == 2
    [point] = stored_points(store)
    assert point.fields == {"air_temp": 20.0, "air_rh": 50.0}
    [letter] = sink.letters
    assert {r["reason"] for r in letter.records} == {"out_of_range", "unknown_sensor"}
    snap = pipe.metrics.snapshot()
    assert snap.records_rejected == 2 and snap.readings_stored == 2


def test_a_message_on_a_foreign_topic_is_dead_lettered(store, sink):
    pipeline_for(store, sink).process([message(pack(air_temp=1.0), topic="other/topic")])
    assert [x.reason for x in sink.letters] == [Reason.BAD_TOPIC]


def test_store_outage_is_retried_until_the_batch_is_stored(store, sink):
    flaky = FlakyStore(store, failures=3)
    acks: list[int] = []
    pipe = pipeline_for(flaky, sink)
    report = pipe.process([message(pack(air_temp=5.0), acks)])
    assert report.acked and acks == [0]
    assert flaky.attempts == 4
    assert pipe.metrics.snapshot().store_retries == 3
    assert len(stored_points(store)) == 1


def test_shutdown_during_an_outage_acknowledges_nothing(store, sink):
    flaky = FlakyStore(store, failures=10**9)
    acks: list[int] = []
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    report = pipeline_for(flaky, sink).process([message(pack(air_temp=5.0), acks)], stop)
    assert not report.acked and acks == []
    assert time.monotonic() - started < 5


def test_store_rejected_points_are_dead_lettered_and_the_rest_acked(store, sink):
    class RejectingStore(FlakyStore):
        def write(self, points):
            good = [p for p in points if p.fields.get("air_temp") != 13.0]
            result = self.inner.write(good)
            from agrimatch.store import Rejected

            result.rejected = [
                Rejected(p, "partial write: field type conflict") for p in points if p not in good
            ]
            return result

    acks: list[int] = []
    msgs = [message(pack(NOW - i, air_temp=10.0 + i), acks, i) for i in range(5)]
    report = pipeline_for(RejectingStore(store, 0), sink).process(msgs)
    assert acks == [0, 1, 2, 3, 4]
    assert len(stored_points(store)) == 4
    [letter] = sink.letters
    assert letter.reason is Reason.STORE_REJECTED and "type conflict" in letter.detail
    assert report.outcomes[3].readings_stored == 0


def test_no_payload_or_topic_crashes_the_pipeline(store, sink):
    import random

    rng = random.Random(7)
    topics = [
        ADDRESS.telemetry_topic,
        "agrimatch/v1/a/b/c/status",
        "x",
        "",
        "agrimatch/v1/A/b/c/telemetry",
    ]
    messages = []
    for i in range(500):
        size = rng.choice([0, 1, 10, 200, 70_000])
        payload = bytes(rng.getrandbits(8) for _ in range(min(size, 300)))
        if size == 70_000:
            payload = b"[" * size
        if i % 5 == 0:
            payload = json.dumps([{"n": rng.choice(["air_temp", "x"]), "v": rng.random()}]).encode()
        messages.append(message(payload, topic=rng.choice(topics)))
    report = pipeline_for(store, sink).process(messages)
    assert report.acked and len(report.outcomes) == 500
    # Every message either stored something or was dead-lettered with a reason.
    for outcome, msg in zip(report.outcomes, messages, strict=True):
        assert outcome.readings_stored > 0 or outcome.problems or outcome.rejected, msg
