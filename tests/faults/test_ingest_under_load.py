"""Faults injected while a steady load runs through real Mosquitto, ``agrimatch ingest``
(a separate process, as deployed) and InfluxDB.

For each: every valid reading sent is stored exactly once, value by value;
every bad message is dead-lettered with its reason on ``agrimatch/v1/_dead/#``;
ingest recovers with no hand on it. Every wait polls a condition with a generous
bound, so a loaded machine makes a scenario slower, not red. Each test prints
one ``FAULT`` line with its figures (``pytest -m faults -s`` shows them; they
are the table of docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agrimatch.contract.telemetry import base_name
from agrimatch.mqtt import MqttEndpoint
from agrimatch.store.influx import InfluxStore
from tests.faults.load import (
    DURATION_S,
    DeadLetterWatcher,
    IngestProcess,
    LoadReport,
    SteadyLoad,
    steady_messages,
)
from tests.loadgen import assert_stored_exactly_once, stored_count, wait_until
from tests.services import InfluxServer, MosquittoServer

pytestmark = [pytest.mark.services, pytest.mark.faults]

# The issue asks for InfluxDB down 60 s. In CI that is 60 s of a 2-core budget for one
# scenario, and 20 s already spans many retry backoffs (capped at 1 s here) and
# thousands of queued packs; AGRIMATCH_FAULTS_INFLUX_OUTAGE_S=60 runs the full length.
INFLUX_OUTAGE_S = float(os.environ.get("AGRIMATCH_FAULTS_INFLUX_OUTAGE_S", "20"))
CATCH_UP_S = 120.0  # the bound on any "everything is stored" wait


def record(fault: str, report: LoadReport, **figures: object) -> None:
    """One line of figures for docs/reliability.md (shown with ``-s``)."""
    held = f"{report.sent} packs at {report.rate_per_s:.0f}/s for {report.elapsed_s:.0f} s"
    extra = ", ".join(f"{k} {v}" for k, v in figures.items())
    print(f"\nFAULT {fault}: {held}, resent {report.resent}, {extra}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    # A broker of its own: no session of an earlier test takes a share of the load.
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def endpoint(broker: MosquittoServer) -> MqttEndpoint:
    return MqttEndpoint.from_url(broker.url)


@pytest.fixture
def ingest(
    broker: MosquittoServer, influx_server: InfluxServer, influx_store: InfluxStore
) -> Iterator[IngestProcess]:
    process = IngestProcess(broker, influx_server, influx_store.database, "ingest-faults")
    process.start()
    yield process
    process.stop()


def wait_stored(store: InfluxStore, count: int, timeout_s: float = CATCH_UP_S) -> bool:
    # Step 0.5 s: each poll reads every point back, which costs InfluxDB more than ingest.
    return wait_until(lambda: stored_count(store) >= count, timeout_s, 0.5)


def test_ingest_sigkilled_mid_batch_under_load_is_restarted_and_stores_every_reading_once(
    endpoint: MqttEndpoint, influx_store: InfluxStore, ingest: IngestProcess
) -> None:
    messages = steady_messages()
    load = SteadyLoad(endpoint, messages).start()
    try:
        assert wait_stored(influx_store, 300, 60), f"ingest stored nothing:\n{ingest.log_tail()}"
        before = ingest.metrics()
        in_flight = (
            before["agrimatch_ingest_messages_received_total"]
            - (before["agrimatch_ingest_messages_acked_total"])
        )
        ingest.sigkill()
        sent_by_kill = load.progress
        assert sent_by_kill < len(messages), "the kill came after the load: not mid-stream"
        time.sleep(2.0)  # down a moment while the fleet goes on publishing
        restarted = time.monotonic()
        ingest.start()
        assert wait_stored(influx_store, sent_by_kill), ingest.log_tail()
        recovery_s = time.monotonic() - restarted
        report = load.join()
    finally:
        load.close()
    assert report.unacknowledged == 0
    assert wait_stored(influx_store, len(messages)), ingest.log_tail()
    assert_stored_exactly_once(influx_store, messages)
    record(
        "ingest SIGKILL",
        report,
        lost=0,
        in_flight_at_kill=int(in_flight),
        catch_up_after_restart_s=round(recovery_s, 1),
    )


# Found by this test: Mosquitto 2.0.11 restores a persistent session's plain
# subscriptions from its persistence file, but not its shared ($share/...) ones. Packs
# published between the broker's return and ingest's re-subscription (its reconnect
# backoff) are acknowledged to the device and routed to nobody: ~700 of 2,000 here.
# Checked by hand with mosquitto_sub -c -x 3600 on '$share/g/t/x' and 't/y': after a
# restart only 't/y' got the message published before the subscriber came back. Not
# strict: when ingest happens to reconnect before the fleet, nothing is lost.
@pytest.mark.xfail(
    reason="Mosquitto 2.0.11 drops a persistent session's shared subscription at restart "
    "(docs/reliability.md)",
    strict=False,
)
def test_mosquitto_restarted_under_load_keeps_ingest_session_and_loses_nothing(
    broker: MosquittoServer,
    endpoint: MqttEndpoint,
    influx_store: InfluxStore,
    ingest: IngestProcess,
) -> None:
    messages = steady_messages()
    load = SteadyLoad(endpoint, messages).start()
    try:
        assert wait_stored(influx_store, 300, 60), ingest.log_tail()
        broker.stop()  # SIGTERM: mosquitto saves its persistence database on the way out
        stopped = time.monotonic()
        assert wait_until(lambda: ingest.metric("agrimatch_ingest_connected") == 0, 30)
        time.sleep(3.0)
        broker.start()
        assert wait_until(lambda: ingest.metric("agrimatch_ingest_connected") == 1, 60), (
            ingest.log_tail()
        )
        reconnect_s = time.monotonic() - stopped
        report = load.join()
    finally:
        load.close()
    assert report.unacknowledged == 0
    # 45 s, not the usual 120: catching up takes 1-3 s, and while this test is an
    # expected failure every run pays the whole bound.
    assert wait_stored(influx_store, len(messages), 45), ingest.log_tail()
    assert_stored_exactly_once(influx_store, messages)
    assert ingest.running, "ingest exited instead of reconnecting"
    record(
        "Mosquitto restart",
        report,
        lost=0,
        broker_down_s=3,
        ingest_reconnected_after_stop_s=round(reconnect_s, 1),
    )


def test_influxdb_down_under_load_holds_every_message_unacknowledged_until_it_returns(
    influx_server: InfluxServer,
    endpoint: MqttEndpoint,
    influx_store: InfluxStore,
    ingest: IngestProcess,
) -> None:
    # The load outlasts the outage by the usual 20 s, so packs arrive before, during and after.
    messages = steady_messages(duration_s=INFLUX_OUTAGE_S + DURATION_S)
    load = SteadyLoad(endpoint, messages).start()
    try:
        assert wait_stored(influx_store, 300, 60), ingest.log_tail()
        influx_server.stop()
        try:
            down_at = time.monotonic()

            def retrying() -> bool:
                return (ingest.metric("agrimatch_ingest_store_retries_total") or 0) > 0

            assert wait_until(retrying, 30), ingest.log_tail()
            acked = ingest.metric("agrimatch_ingest_messages_acked_total")
            time.sleep(max(0.0, INFLUX_OUTAGE_S - (time.monotonic() - down_at)))
            # Nothing is acknowledged while nothing can be stored (the batch that was
            # being written when the store went down is the one retried).
            assert ingest.metric("agrimatch_ingest_messages_acked_total") == acked
            queued = ingest.metric("agrimatch_ingest_messages_received_total") or 0
        finally:
            influx_server.start()
        back = time.monotonic()
        sent_by_return = load.progress
        assert wait_stored(influx_store, sent_by_return), ingest.log_tail()
        recovery_s = time.monotonic() - back
        report = load.join()
    finally:
        load.close()
    assert report.unacknowledged == 0
    assert wait_stored(influx_store, len(messages)), ingest.log_tail()
    assert_stored_exactly_once(influx_store, messages)
    assert ingest.running and ingest.metric("agrimatch_ingest_writer_alive") == 1
    record(
        "InfluxDB down",
        report,
        lost=0,
        outage_s=round(INFLUX_OUTAGE_S),
        received_unacked_by_return=int(queued - (acked or 0)),
        caught_up_after_return_s=round(recovery_s, 1),
    )


def garbage(device_topic: str, device: str, other_device: str) -> list[tuple[bytes, str]]:
    """One message of each class of bad input a fleet sends, with the reason it must get."""
    now = time.time()

    def pack(*records: dict[str, object], bn: str = base_name(device)) -> bytes:
        first = {"bn": bn, "bt": now - 60} | records[0]
        return json.dumps([first, *records[1:]]).encode()

    return [
        (b"\xff\x00 not json", "not_json"),
        (b"{truncated", "not_json"),
        (b'{"n": "air_temp", "v": 1}', "not_senml"),
        (b"[]", "not_senml"),
        (pack({"n": "leaf_colour", "u": "Cel", "v": 1}), "unknown_sensor"),
        (pack({"n": "air_temp", "u": "K", "v": 290}), "wrong_unit"),
        (pack({"n": "air_temp", "u": "Cel", "vs": "warm"}), "wrong_type"),
        (pack({"n": "air_temp", "u": "Cel", "v": 999}), "out_of_range"),
        (pack({"n": "air_temp", "u": "Cel", "v": 20, "t": 86_400}), "time_in_future"),
        (
            pack({"n": "air_temp", "u": "Cel", "v": 20}, bn=base_name(other_device)),
            "device_mismatch",
        ),
        (b"[" + b" " * 70_000 + b"]", "too_large"),
    ]


def test_one_percent_garbage_under_load_is_dead_lettered_with_reasons_and_the_rest_stored(
    endpoint: MqttEndpoint, influx_store: InfluxStore, ingest: IngestProcess
) -> None:
    messages = steady_messages()
    watcher = DeadLetterWatcher(endpoint)
    target = messages[0].address
    classes = garbage(target.telemetry_topic, target.device, messages[-1].address.device)
    bad_count = len(messages) // 100  # one bad message per hundred good ones
    expected = Counter(classes[i % len(classes)][1] for i in range(bad_count))
    load = SteadyLoad(endpoint, messages).start()
    try:
        for i in range(bad_count):
            assert wait_until(lambda i=i: load.progress >= i * 100 + 50, 60, 0.05)
            load.inject(target.telemetry_topic, classes[i % len(classes)][0])
        report = load.join()
    finally:
        load.close()
    try:
        assert report.unacknowledged == 0
        assert wait_stored(influx_store, len(messages)), ingest.log_tail()
        assert_stored_exactly_once(influx_store, messages)
        assert wait_until(lambda: sum(watcher.reasons().values()) >= bad_count, 60), (
            watcher.reasons(),
            {k: v for k, v in ingest.metrics().items() if "dead" in k},
        )
        time.sleep(1.0)  # a letter too many would arrive now
        assert watcher.reasons() == expected
        for body in watcher.bodies():
            assert body["topic"] == target.telemetry_topic and body["reason"]
        # Counted by reason as well (whole messages refused and packs whose every record
        # was refused are counted apart, the letters by reason are all of them).
        counted = {
            reason: ingest.metric(f'agrimatch_ingest_dead_letters_total{{reason="{reason}"}}')
            for reason in expected
        }
        assert counted == {reason: float(n) for reason, n in expected.items()}
    finally:
        watcher.close()
    record(
        "1 % garbage",
        report,
        lost=0,
        bad=bad_count,
        dead_lettered=dict(sorted(watcher.reasons().items())),
    )


POISON_BYTES = 8 * 1024 * 1024  # of 0x01: once it killed the writer on every redelivery


def test_a_poison_message_under_load_is_dead_lettered_once_and_not_redelivered_after_a_restart(
    endpoint: MqttEndpoint, influx_store: InfluxStore, ingest: IngestProcess
) -> None:
    messages = steady_messages()
    watcher = DeadLetterWatcher(endpoint)
    topic = messages[0].address.telemetry_topic
    load = SteadyLoad(endpoint, messages).start()
    try:
        assert wait_until(lambda: load.progress >= len(messages) // 4, 60, 0.05)
        load.inject(topic, b"\x01" * POISON_BYTES)
        assert wait_until(lambda: watcher.reasons()["too_large"] == 1, 60), ingest.log_tail()
        # Acknowledged with its batch: a restart must not see it again.
        assert wait_until(
            lambda: ingest.metric("agrimatch_ingest_messages_dead_lettered_total") == 1, 30
        )
        assert wait_until(
            lambda: (
                (ingest.metric("agrimatch_ingest_messages_acked_total") or 0)
                >= (ingest.metric("agrimatch_ingest_messages_received_total") or 0) - 300
            ),
            30,
        )
        time.sleep(1.0)
        ingest.sigkill()
        ingest.start()
        report = load.join()
    finally:
        load.close()
    try:
        assert report.unacknowledged == 0
        assert wait_stored(influx_store, len(messages)), ingest.log_tail()
        assert_stored_exactly_once(influx_store, messages)
        time.sleep(1.0)
        assert watcher.reasons() == Counter({"too_large": 1})
        [letter] = watcher.bodies()
        assert letter["payload_bytes"] == POISON_BYTES and letter["truncated"] is True
        assert ingest.metric("agrimatch_ingest_messages_dead_lettered_total") == 0
        assert ingest.metric("agrimatch_ingest_writer_alive") == 1
    finally:
        watcher.close()
    record("poison message", report, lost=0, poison_bytes=POISON_BYTES, dead_lettered_once=True)
