"""Faults injected while a steady load from the real fleet (``firmware_sim``'s nodes,
registered in the registry ingest checks places against) runs through real Mosquitto,
``agrimatch ingest`` (a separate process, as deployed) and InfluxDB.

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
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint
from agrimatch.store.influx import InfluxStore
from firmware_sim import DeviceSpec
from tests.faults.load import (
    DURATION_S,
    HOURS_BACK,
    DeadLetterWatcher,
    IngestProcess,
    LoadReport,
    SteadyLoad,
    assert_stored_exactly_once,
    fleet_specs,
    registry_for,
)
from tests.loadgen import all_points, stored_count, wait_until
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
def specs() -> list[DeviceSpec]:
    return fleet_specs()


@pytest.fixture
def registry(tmp_path: Path, specs: list[DeviceSpec]) -> str:
    """A registry holding the fleet, as ``agrimatch sim`` registers it."""
    return registry_for(tmp_path, specs)


@pytest.fixture
def ingest(
    broker: MosquittoServer,
    influx_server: InfluxServer,
    influx_store: InfluxStore,
    registry: str,
) -> Iterator[IngestProcess]:
    process = IngestProcess(
        broker, influx_server, influx_store.database, "ingest-faults", registry_url=registry
    )
    process.start()
    yield process
    process.stop()


def wait_stored(store: InfluxStore, count: int, timeout_s: float = CATCH_UP_S) -> bool:
    # Step 0.5 s: each poll reads every point back, which costs InfluxDB more than ingest.
    return wait_until(lambda: stored_count(store) >= count, timeout_s, 0.5)


def test_ingest_sigkilled_mid_batch_under_load_is_restarted_and_stores_every_reading_once(
    endpoint: MqttEndpoint,
    influx_store: InfluxStore,
    ingest: IngestProcess,
    specs: list[DeviceSpec],
) -> None:
    load = SteadyLoad(endpoint, specs).start()
    try:
        assert wait_stored(influx_store, 300, 60), f"ingest stored nothing:\n{ingest.log_tail()}"
        before = ingest.metrics()
        in_flight = (
            before["agrimatch_ingest_messages_received_total"]
            - (before["agrimatch_ingest_messages_acked_total"])
        )
        ingest.sigkill()
        sent_by_kill = load.progress
        assert sent_by_kill < load.expected, "the kill came after the load: not mid-stream"
        time.sleep(2.0)  # down a moment while the fleet goes on publishing
        restarted = time.monotonic()
        ingest.start()
        assert wait_stored(influx_store, sent_by_kill), ingest.log_tail()
        recovery_s = time.monotonic() - restarted
        report = load.join()
    finally:
        load.close()
    assert report.unacknowledged == 0
    assert wait_stored(influx_store, report.sent), ingest.log_tail()
    assert_stored_exactly_once(influx_store, load.messages)
    record(
        "ingest SIGKILL",
        report,
        lost=0,
        in_flight_at_kill=int(in_flight),
        catch_up_after_restart_s=round(recovery_s, 1),
    )


def restart_broker_under_load(
    broker: MosquittoServer, ingest: IngestProcess, load: SteadyLoad, store: InfluxStore
) -> tuple[float, float, float]:
    """Stop Mosquitto (SIGTERM: it saves its persistence database) while the fleet
    publishes, keep it down 3 s, start it again; wait until ingest is back. Returns
    the wall-clock times of the stop, of the broker's return and of ingest seen
    connected again (its subscription goes out right after its CONNACK)."""
    assert wait_stored(store, 300, 60), ingest.log_tail()
    stopped = time.time()
    broker.stop()
    assert wait_until(lambda: ingest.metric("agrimatch_ingest_connected") == 0, 30)
    time.sleep(max(0.0, 3.0 - (time.time() - stopped)))
    broker.start()
    back = time.time()
    assert wait_until(lambda: ingest.metric("agrimatch_ingest_connected") == 1, 60, 0.05), (
        ingest.log_tail()
    )
    return stopped, back, time.time()


def test_mosquitto_restarted_under_load_loses_nothing_for_one_ingest_on_its_plain_subscription(
    broker: MosquittoServer,
    endpoint: MqttEndpoint,
    influx_store: InfluxStore,
    ingest: IngestProcess,
    specs: list[DeviceSpec],
) -> None:
    # The default (AGRIMATCH_INGEST_SUBSCRIPTION=plain): Mosquitto restores the
    # persistent session's plain subscription from its persistence file, so packs the
    # devices publish before ingest is back are queued for it, not dropped.
    load = SteadyLoad(endpoint, specs).start()
    try:
        stopped, _back, resumed = restart_broker_under_load(broker, ingest, load, influx_store)
        report = load.join()
    finally:
        load.close()
    assert report.unacknowledged == 0
    assert wait_stored(influx_store, report.sent), ingest.log_tail()
    assert_stored_exactly_once(influx_store, load.messages)
    assert ingest.running, "ingest exited instead of reconnecting"
    assert ingest.said("(session present: True), subscribing agrimatch/v1/+/+/+/telemetry")
    record(
        "Mosquitto restart, one ingest, plain subscription",
        report,
        lost=0,
        broker_down_s=3,
        ingest_reconnected_after_stop_s=round(resumed - stopped, 1),
        device_reconnects=report.reconnects,
    )


def test_mosquitto_restarted_under_load_on_the_shared_subscription_loses_only_the_gap(
    broker: MosquittoServer,
    endpoint: MqttEndpoint,
    influx_server: InfluxServer,
    influx_store: InfluxStore,
    registry: str,
    specs: list[DeviceSpec],
) -> None:
    """Shared mode (N replicas): measures what Mosquitto 2.0.11 loses, and that it is
    only what the devices published between the broker's return and ingest's
    re-subscription (the broker does not restore a session's shared subscription).

    Every pack is acknowledged to its device, so the device's outbox has nothing to
    send again: the loss is the broker's (docs/reliability.md)."""
    ingest = IngestProcess(
        broker,
        influx_server,
        influx_store.database,
        "ingest-shared",
        registry_url=registry,
        subscription="shared",
    ).start()
    load = SteadyLoad(endpoint, specs).start()
    try:
        stopped, back, resumed = restart_broker_under_load(broker, ingest, load, influx_store)
        report = load.join()
        assert report.unacknowledged == 0
        # Count what is missing once the store has stopped growing for 3 s (bounded).
        settled: list[int] = []

        def settled_for_3_s() -> bool:
            settled.append(stored_count(influx_store))
            return len(settled) > 6 and len(set(settled[-7:])) == 1

        wait_until(settled_for_3_s, 60, 0.5)
        stored = {(p.tags["device"], p.time_ms) for p in all_points(influx_store)}
        lost = [m for m in load.messages if (m.address.device, m.time_ms) not in stored]
        assert ingest.running and ingest.said("(session present: True)")
        assert ingest.said("subscribed $share/ingest/agrimatch/v1/+/+/+/telemetry")
    finally:
        load.close()
        ingest.stop()
    # A lost pack was sampled (device clock HOURS_BACK behind) while the broker was
    # down or before ingest was back: waiting in its outbox, sent at the devices'
    # reconnect, acknowledged by the broker and routed to nobody. 1 s of slack each side
    # for a pack in flight at the stop and for the metric's polling.
    offset_ms = HOURS_BACK * 3600 * 1000
    window = ((stopped - 1) * 1000 - offset_ms, (resumed + 1) * 1000 - offset_ms)
    outside = [m for m in lost if not window[0] <= m.time_ms <= window[1]]
    assert not outside, f"{len(outside)} of {len(lost)} lost packs outside the gap: {outside[:3]}"
    record(
        "Mosquitto restart, shared subscription",
        report,
        lost=len(lost),
        broker_down_s=round(back - stopped, 1),
        ingest_back_after_broker_s=round(resumed - back, 1),
    )


def test_influxdb_down_under_load_holds_every_message_unacknowledged_until_it_returns(
    influx_server: InfluxServer,
    endpoint: MqttEndpoint,
    influx_store: InfluxStore,
    ingest: IngestProcess,
    specs: list[DeviceSpec],
) -> None:
    # The load outlasts the outage by the usual 20 s, so packs arrive before, during and after.
    load = SteadyLoad(endpoint, specs, duration_s=INFLUX_OUTAGE_S + DURATION_S).start()
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
    assert wait_stored(influx_store, report.sent), ingest.log_tail()
    assert_stored_exactly_once(influx_store, load.messages)
    assert ingest.running and ingest.metric("agrimatch_ingest_writer_alive") == 1
    record(
        "InfluxDB down",
        report,
        lost=0,
        outage_s=round(INFLUX_OUTAGE_S),
        received_unacked_by_return=int(queued - (acked or 0)),
        caught_up_after_return_s=round(recovery_s, 1),
    )


def garbage(target: DeviceAddress, other_device: str) -> list[tuple[str, bytes, str]]:
    """One message of each class of bad input a fleet sends: topic, payload, the reason
    it must get. ``target`` is a registered device, ``other_device`` another one."""
    now = time.time()
    topic = target.telemetry_topic

    def pack(*records: dict[str, object], bn: str = base_name(target.device)) -> bytes:
        first = {"bn": bn, "bt": now - 60} | records[0]
        return json.dumps([first, *records[1:]]).encode()

    good = pack({"n": "air_temp", "u": "Cel", "v": 20})
    ghost = DeviceAddress(target.farm, target.field, "ghost-0001")
    elsewhere = DeviceAddress("farm-elsewhere", target.field, target.device)
    return [
        (topic, b"\xff\x00 not json", "not_json"),
        (topic, b"{truncated", "not_json"),
        (topic, b'{"n": "air_temp", "v": 1}', "not_senml"),
        (topic, b"[]", "not_senml"),
        (topic, pack({"n": "leaf_colour", "u": "Cel", "v": 1}), "unknown_sensor"),
        (topic, pack({"n": "air_temp", "u": "K", "v": 290}), "wrong_unit"),
        (topic, pack({"n": "air_temp", "u": "Cel", "vs": "warm"}), "wrong_type"),
        (topic, pack({"n": "air_temp", "u": "Cel", "v": 999}), "out_of_range"),
        (topic, pack({"n": "air_temp", "u": "Cel", "v": 20, "t": 86_400}), "time_in_future"),
        (
            topic,
            pack({"n": "air_temp", "u": "Cel", "v": 20}, bn=base_name(other_device)),
            "device_mismatch",
        ),
        (topic, b"[" + b" " * 70_000 + b"]", "too_large"),
        # The registry's check (on by default): a device it lacks, one on another farm.
        (
            ghost.telemetry_topic,
            pack({"n": "air_temp", "u": "Cel", "v": 20}, bn=base_name(ghost.device)),
            "unknown_device",
        ),
        (elsewhere.telemetry_topic, good, "wrong_place"),
    ]


def test_one_percent_garbage_under_load_is_dead_lettered_with_reasons_and_the_rest_stored(
    endpoint: MqttEndpoint,
    influx_store: InfluxStore,
    ingest: IngestProcess,
    specs: list[DeviceSpec],
) -> None:
    watcher = DeadLetterWatcher(endpoint)
    target = specs[0].address
    classes = garbage(target, specs[-1].device)
    load = SteadyLoad(endpoint, specs)
    bad_count = load.expected // 100  # one bad message per hundred good ones
    chosen = [classes[i % len(classes)] for i in range(bad_count)]
    expected = Counter(reason for _, _, reason in chosen)
    load.start()
    try:
        for i, (topic, payload, _) in enumerate(chosen):
            assert wait_until(lambda i=i: load.progress >= i * 100 + 50, 60, 0.05)
            load.inject(topic, payload)
        report = load.join()
    finally:
        load.close()
    try:
        assert report.unacknowledged == 0
        assert wait_stored(influx_store, report.sent), ingest.log_tail()
        assert_stored_exactly_once(influx_store, load.messages)
        assert wait_until(lambda: sum(watcher.reasons().values()) >= bad_count, 60), (
            watcher.reasons(),
            {k: v for k, v in ingest.metrics().items() if "dead" in k},
        )
        time.sleep(1.0)  # a letter too many would arrive now
        assert watcher.reasons() == expected
        topics = {topic for topic, _, _ in chosen}
        for body in watcher.bodies():
            assert body["topic"] in topics and body["reason"]
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
    endpoint: MqttEndpoint,
    influx_store: InfluxStore,
    ingest: IngestProcess,
    specs: list[DeviceSpec],
) -> None:
    watcher = DeadLetterWatcher(endpoint)
    topic = specs[0].address.telemetry_topic
    load = SteadyLoad(endpoint, specs).start()
    try:
        assert wait_until(lambda: load.progress >= load.expected // 4, 60, 0.05)
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
        assert wait_stored(influx_store, report.sent), ingest.log_tail()
        assert_stored_exactly_once(influx_store, load.messages)
        time.sleep(1.0)
        assert watcher.reasons() == Counter({"too_large": 1})
        [letter] = watcher.bodies()
        assert letter["payload_bytes"] == POISON_BYTES and letter["truncated"] is True
        assert ingest.metric("agrimatch_ingest_messages_dead_lettered_total") == 0
        assert ingest.metric("agrimatch_ingest_writer_alive") == 1
    finally:
        watcher.close()
    record("poison message", report, lost=0, poison_bytes=POISON_BYTES, dead_lettered_once=True)
