"""Dead letters stay small whatever the input, and a message ingest chokes on is one of them.

The pipeline runs on the embedded store with an in-memory sink here; the
same letters through real Mosquitto are in ``test_ingest_faults.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agrimatch.clock import SimulatedClock
from agrimatch.contract.reasons import Reason
from agrimatch.contract.telemetry import MAX_PAYLOAD_BYTES, Reading, base_name, encode_telemetry
from agrimatch.contract.topics import DeviceAddress
from agrimatch.store.embedded import EmbeddedStore
from ingest import InboundMessage, MemoryDeadLetterSink, TelemetryPipeline
from ingest import pipeline as pipeline_module
from ingest.deadletter import MAX_LETTER_BYTES, PAYLOAD_PREFIX_BYTES, RECORDS_KEPT, DeadLetter
from ingest.pipeline import RetryPolicy

# Bad input, kept running: part of the fault suite (pytest -m faults) as well as CI.
pytestmark = pytest.mark.faults

NOW = 1_764_072_000.0
ADDRESS = DeviceAddress("farm-1", "field-1", "dev-1")


def unknown_sensor_pack(records: int) -> bytes:
    """A pack of ``records`` records naming a sensor nobody knows (16 bytes each)."""
    pack: list[dict[str, object]] = [{"bn": base_name(ADDRESS.device), "bt": NOW}]
    pack[0] |= {"n": "x", "v": 1}
    pack += [{"n": "x", "v": 1} for _ in range(1, records)]
    return json.dumps(pack, separators=(",", ":")).encode()


def good_pack(value: float, minutes_ago: int = 0) -> bytes:
    time_ms = int((NOW - 60 * minutes_ago) * 1000)
    return encode_telemetry(ADDRESS.device, [Reading("air_temp", time_ms, value)])


@pytest.fixture
def store(tmp_path):
    s = EmbeddedStore(tmp_path / "t.sqlite3")
    yield s
    s.close()


def run(store, payloads: list[bytes]) -> tuple[MemoryDeadLetterSink, list[int]]:
    sink = MemoryDeadLetterSink()
    acks: list[int] = []
    messages = [
        InboundMessage(ADDRESS.telemetry_topic, p, NOW, lambda i=i: acks.append(i))
        for i, p in enumerate(payloads)
    ]
    pipe = TelemetryPipeline(store, sink, SimulatedClock(NOW), retry=RetryPolicy(0.01, 0.02))
    assert pipe.process(messages).acked
    return sink, acks


def test_a_46_mib_binary_payload_gives_a_small_letter_with_its_size_digest_and_a_prefix(store):
    huge = b"\x01" * 48_234_496  # the payload of the report: 46 MiB of 0x01
    sink, acks = run(store, [huge, good_pack(20.0)])
    assert acks == [0, 1]
    [letter] = sink.letters
    body = letter.to_json()
    assert len(body) <= 4096  # was ~276 MB (six bytes per 0x01), more than MQTT can carry
    doc = json.loads(body)
    assert doc["reason"] == "too_large" and doc["truncated"] is True
    assert doc["payload_bytes"] == len(huge)
    assert doc["payload_sha256"] == hashlib.sha256(huge).hexdigest()
    assert doc["payload_encoding"] == "base64"
    assert base64.b64decode(doc["payload"]) == huge[:PAYLOAD_PREFIX_BYTES]
    assert store.query_points("telemetry", 0, 2**62)[0].fields == {"air_temp": 20.0}


def test_a_pack_of_4000_unknown_sensors_gives_a_small_letter_listing_the_first_few(store):
    payload = unknown_sensor_pack(4000)
    assert 60_000 < len(payload) <= MAX_PAYLOAD_BYTES  # within the contract: it is decoded
    sink, _ = run(store, [payload])
    [letter] = sink.letters
    body = letter.to_json()
    assert len(body) <= MAX_LETTER_BYTES  # was 1.3 MB
    doc = json.loads(body)
    assert doc["reason"] == "unknown_sensor" and doc["truncated"] is True
    assert doc["records_total"] == 4000 and len(doc["records"]) == RECORDS_KEPT
    assert [r["index"] for r in doc["records"]] == list(range(RECORDS_KEPT))
    assert doc["payload_bytes"] == len(payload)


def test_a_small_message_travels_whole_and_is_not_marked_truncated(store):
    payload = b'[{"n": "x", "v": 1}]'
    sink, _ = run(store, [payload])
    doc = json.loads(sink.letters[0].to_json())
    assert doc["payload"] == payload.decode() and doc["payload_encoding"] == "utf-8"
    assert doc["truncated"] is False and doc["records_total"] == 1


def test_text_cut_inside_a_multibyte_character_stays_text():
    payload = "é".encode() * 2000  # two bytes each: the 1 KiB cut falls inside none or one
    letter = DeadLetter.of(Reason.NOT_JSON, "not JSON", ADDRESS.telemetry_topic, payload[1:], NOW)
    doc = json.loads(letter.to_json())
    assert doc["payload_encoding"] == "base64"  # starts mid-character: not UTF-8
    letter = DeadLetter.of(
        Reason.NOT_JSON, "not JSON", ADDRESS.telemetry_topic, payload + b"x", NOW
    )
    doc = json.loads(letter.to_json())
    assert doc["payload_encoding"] == "utf-8" and set(doc["payload"]) == {"é"}
    assert doc["truncated"] is True


@settings(max_examples=300, deadline=None)
@given(
    payload=st.one_of(
        st.binary(max_size=5000),
        st.text(max_size=3000).map(str.encode),
        st.sampled_from([b'"' * 5000, b"\\" * 5000, "\U0001f600".encode() * 1500]),
    ),
    topic=st.text(max_size=2000),
    detail=st.text(max_size=5000),
    records=st.lists(
        st.fixed_dictionaries({"index": st.integers(), "detail": st.text(max_size=2000)}),
        max_size=60,
    ),
)
def test_no_letter_is_larger_than_its_bound_whatever_it_carries(payload, topic, detail, records):
    letter = DeadLetter.of(Reason.NOT_SENML, detail, topic, payload, NOW, records)
    assert len(letter.to_json()) <= MAX_LETTER_BYTES
    assert letter.records_total == len(records)


def test_a_message_that_makes_ingest_fail_is_dead_lettered_and_the_rest_stored(store, monkeypatch):
    real = pipeline_module.decode_telemetry

    def decode_with_a_bug(payload, device, now, limits):
        if payload == b"poison":
            raise KeyError("a bug on this one message")
        return real(payload, device, now, limits)

    monkeypatch.setattr(pipeline_module, "decode_telemetry", decode_with_a_bug)
    sink, acks = run(store, [good_pack(1.0, minutes_ago=1), b"poison", good_pack(2.0)])
    assert acks == [0, 1, 2]  # acknowledged: it will not come back to stop the writer again
    [letter] = sink.letters
    assert letter.reason is Reason.INTERNAL_ERROR and "KeyError" in letter.detail
    assert letter.payload_prefix == b"poison"
    stored = store.query_points("telemetry", 0, 2**62)
    assert [p.fields["air_temp"] for p in stored] == [1.0, 2.0]
