"""The simulated fleet against a real Mosquitto: delivery, status, config, will, store-and-forward.

The clock runs 600 times faster than real time, so with a 60 s interval every
device samples every 0.1 s of real time and a 10-sample run takes a second.
Every test renames its farms and devices with a tag of its own, so retained
messages of one test never reach another on the session's broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import paho.mqtt.client as paho
import pytest

from agrimatch.clock import SimulatedClock
from agrimatch.contract.sensors import FIELD_NODE_SENSORS
from agrimatch.contract.telemetry import Reading, decode_telemetry
from agrimatch.contract.topics import DeviceAddress, TopicKind, parse_topic
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from firmware_sim import DeviceSpec, Fleet, FleetStats, plan_fleet, run_fleet

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]

SEED = 5
START_S = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
SPEED = 600.0
ALL_STATUS = "agrimatch/v1/+/+/+/status"
ALL_TELEMETRY = "agrimatch/v1/+/+/+/telemetry"


@dataclass(frozen=True, slots=True)
class Heard:
    address: DeviceAddress
    kind: TopicKind
    payload: bytes
    retained: bool


class Listener:
    """A paho subscriber recording what it hears from one test's devices."""

    def __init__(
        self, endpoint: MqttEndpoint, tag: str, topics: list[str], *, persistent: bool = False
    ) -> None:
        self.tag = tag
        self.heard: list[Heard] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = make_paho_client(
            endpoint, f"listener-{tag}-{uuid.uuid4().hex[:6]}", clean_start=not persistent
        )
        # Survive a broker restart: come back quickly.
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.2)

        def on_connect(client, userdata, flags, reason_code, properties):
            client.subscribe([(topic, 1) for topic in topics])

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            self._subscribed.set()

        def on_message(client, userdata, message: paho.MQTTMessage):
            address, kind = parse_topic(message.topic)
            if address.farm.startswith(f"{tag}-") and message.payload:
                heard = Heard(address, kind, bytes(message.payload), bool(message.retain))
                with self._lock:
                    self.heard.append(heard)

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "listener did not subscribe"

    def snapshot(self, kind: TopicKind | None = None) -> list[Heard]:
        with self._lock:
            return [h for h in self.heard if kind is None or h.kind == kind]

    def statuses(self, device: str) -> list[dict]:
        return [
            json.loads(h.payload)
            for h in self.snapshot(TopicKind.STATUS)
            if h.address.device == device
        ]

    def sample_times(self, device: str) -> list[int]:
        """Sample times (ms) of the telemetry packs heard from ``device``, in arrival order."""
        times = []
        for h in self.snapshot(TopicKind.TELEMETRY):
            if h.address.device == device:
                decoded = decode_telemetry(h.payload, device, now=START_S + 10 * 86400)
                assert decoded.problems == []
                times.append(decoded.readings[0].time_ms)
        return times

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


async def await_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


@pytest.fixture
def endpoint(mosquitto_server) -> MqttEndpoint:
    return MqttEndpoint.from_url(mosquitto_server.url)


@pytest.fixture
def tag(endpoint) -> Iterator[str]:
    """A tag of this test's own; its devices' retained messages are cleared afterwards."""
    value = f"t{uuid.uuid4().hex[:6]}"
    yield value
    # Clear what the test left retained (status, config) so the session broker stays clean.
    seen: set[str] = set()
    sweeper = make_paho_client(endpoint, f"sweeper-{value}")
    mine = f"agrimatch/v1/{value}-"
    sweeper.on_message = lambda c, u, m: (
        seen.add(m.topic) if m.retain and m.topic.startswith(mine) else None
    )
    sweeper.connect(endpoint.host, endpoint.port)
    sweeper.loop_start()
    sweeper.subscribe("agrimatch/v1/#", qos=1)
    time.sleep(0.3)
    for topic in sorted(seen):
        sweeper.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    sweeper.disconnect()
    sweeper.loop_stop()


def tagged_fleet(tag: str, devices: int, interval_s: float = 60.0) -> list[DeviceSpec]:
    """A planned fleet whose farm and device ids carry ``tag``."""
    return [
        dataclasses.replace(
            spec,
            address=DeviceAddress(
                f"{tag}-{spec.address.farm}", spec.address.field, f"{tag}-{spec.device}"
            ),
        )
        for spec in plan_fleet(devices, SEED, interval_s)
    ]


class Ledger:
    """What ``on_publish`` reported: (device, sample time ms) -> readings."""

    def __init__(self) -> None:
        self.packs: dict[tuple[str, int], list[Reading]] = {}

    def __call__(self, address: DeviceAddress, readings: list[Reading]) -> None:
        times = {r.time_ms for r in readings}
        assert len(times) == 1
        self.packs[(address.device, times.pop())] = readings


def run(
    fleet: Fleet,
    duration_s: float,
    during: Callable[[Fleet], Coroutine[Any, Any, None]] | None = None,
) -> FleetStats:
    """Run ``fleet`` for ``duration_s`` clock seconds, with ``during(fleet)`` alongside."""

    async def main() -> FleetStats:
        task = asyncio.create_task(fleet.run(duration_s))
        if during is not None:
            await asyncio.sleep(0)  # let run() create the nodes
            await during(fleet)
        return await task

    return asyncio.run(main())


# --- tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_every_pack_the_broker_acknowledged_reaches_a_subscriber(mosquitto_server, tag, protocol):
    endpoint = MqttEndpoint.from_url(mosquitto_server.url, protocol=protocol)
    listener = Listener(endpoint, tag, [ALL_TELEMETRY])
    ledger = Ledger()
    specs = tagged_fleet(tag, 20)
    fleet = Fleet(specs, endpoint, SimulatedClock(START_S, SPEED), SEED, on_publish=ledger)
    try:
        stats = run(fleet, 600.0)
        assert wait_for(lambda: len(listener.snapshot()) >= len(ledger.packs), 10)
        heard = {(spec.device, t) for spec in specs for t in listener.sample_times(spec.device)}
    finally:
        listener.close()
    # A 600 s run at a 60 s interval: ten samples per device, whatever its phase.
    assert stats.devices == 20
    assert stats.messages_sent == 200 == len(ledger.packs)
    assert stats.readings_sent == 200 * len(FIELD_NODE_SENSORS)
    assert all(s.messages_sent == 10 for s in stats.per_device.values())
    assert stats.evicted == stats.undelivered == 0
    assert heard == set(ledger.packs)


def test_births_are_retained_while_running_and_a_graceful_stop_leaves_offline(endpoint, tag):
    specs = tagged_fleet(tag, 20)
    devices = {spec.device for spec in specs}
    fleet = Fleet(specs, endpoint, SimulatedClock(START_S, SPEED), SEED)
    retained_while_running: dict[str, dict] = {}

    async def check_births(fleet: Fleet) -> None:
        assert await await_for(lambda: all(n.connected for n in fleet.nodes.values()), 10)
        # A subscriber arriving now gets each device's retained birth.
        late = Listener(endpoint, tag, [ALL_STATUS])
        try:
            assert await await_for(
                lambda: {h.address.device for h in late.snapshot()} == devices, 5
            )
            for h in late.snapshot():
                assert h.retained
                retained_while_running[h.address.device] = json.loads(h.payload)
        finally:
            late.close()

    run(fleet, 900.0, check_births)
    assert set(retained_while_running) == devices
    for status in retained_while_running.values():
        assert status["state"] == "online"
        assert status["interval_s"] == 60.0
        assert abs(status["ts"] - START_S) < 900

    after = Listener(endpoint, tag, [ALL_STATUS])
    try:
        assert wait_for(lambda: {h.address.device for h in after.snapshot()} == devices, 5)
        final = {h.address.device: json.loads(h.payload) for h in after.snapshot()}
    finally:
        after.close()
    assert {s["state"] for s in final.values()} == {"offline"}
    assert {s["reason"] for s in final.values()} == {"stopped"}


def test_a_retained_config_changes_a_devices_interval_and_its_next_status_confirms_it(
    endpoint, tag
):
    specs = tagged_fleet(tag, 3)
    target, other = specs[0].device, specs[1].device
    listener = Listener(endpoint, tag, [ALL_TELEMETRY, ALL_STATUS])
    fleet = Fleet(specs, endpoint, SimulatedClock(START_S, SPEED), SEED)
    confirmed: list[dict] = []

    async def reconfigure(fleet: Fleet) -> None:
        assert await await_for(lambda: fleet.nodes[target].connected, 10)
        publisher = make_paho_client(endpoint, f"operator-{tag}")
        publisher.connect(endpoint.host, endpoint.port)
        publisher.loop_start()
        try:
            publisher.publish(
                specs[0].address.config_topic, b'{"interval_s": 30}', qos=1, retain=True
            ).wait_for_publish(5)
        finally:
            publisher.disconnect()
            publisher.loop_stop()

        def confirmation() -> bool:
            confirmed[:] = [s for s in listener.statuses(target) if s.get("interval_s") == 30]
            return bool(confirmed)

        assert await await_for(confirmation, 5)

    try:
        run(fleet, 1800.0, reconfigure)
        assert wait_for(lambda: len(listener.sample_times(other)) == 30, 5)
        target_times = listener.sample_times(target)
        other_times = listener.sample_times(other)
    finally:
        listener.close()

    statuses = listener.statuses(target)
    assert statuses[0]["state"] == "online" and statuses[0]["interval_s"] == 60.0
    assert confirmed[0]["state"] == "online"
    assert fleet.nodes[target].interval_s == 30.0
    changed_at_ms = round(confirmed[0]["ts"] * 1000)
    after = sorted(t for t in target_times if t > changed_at_ms)
    assert len(after) >= 10
    assert {b - a for a, b in pairwise(after)} == {30_000}
    assert {b - a for a, b in pairwise(other_times)} == {60_000}


def test_an_unclean_disconnect_fires_the_last_will_and_the_buffer_is_replayed(endpoint, tag):
    specs = tagged_fleet(tag, 4)
    victim = specs[2].device
    listener = Listener(endpoint, tag, [ALL_TELEMETRY, ALL_STATUS])
    ledger = Ledger()
    fleet = Fleet(
        specs,
        endpoint,
        SimulatedClock(START_S, SPEED),
        SEED,
        on_publish=ledger,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )

    async def lose_radio(fleet: Fleet) -> None:
        assert await await_for(lambda: fleet.nodes[victim].connected, 10)
        await asyncio.sleep(0.2)
        fleet.nodes[victim].cut_link(outage_s=300.0)  # five sample times without a link
        lost = {"state": "offline", "reason": "lost"}
        assert await await_for(lambda: lost in listener.statuses(victim), 5)

    try:
        stats = run(fleet, 1200.0, lose_radio)
        assert wait_for(lambda: len(listener.sample_times(victim)) >= 20, 5)
        times = listener.sample_times(victim)
        statuses = listener.statuses(victim)
    finally:
        listener.close()

    node = stats.per_device[victim]
    assert node.reconnects >= 1
    assert node.buffered >= 4 and node.replayed == node.buffered
    assert node.messages_sent == 20 and node.evicted == 0
    # Replayed packs keep their own sample times: the series has no hole and no shift.
    assert sorted(set(times)) == sorted(t for d, t in ledger.packs if d == victim)
    assert {b - a for a, b in pairwise(sorted(times))} == {60_000}
    states = [s["state"] for s in statuses]
    assert states[:3] == ["online", "offline", "online"]  # birth, will, birth again


def test_a_full_buffer_evicts_the_oldest_packs_and_counts_them(endpoint, tag):
    specs = tagged_fleet(tag, 2)
    victim = specs[0].device
    ledger = Ledger()
    fleet = Fleet(
        specs,
        endpoint,
        SimulatedClock(START_S, SPEED),
        SEED,
        on_publish=ledger,
        buffer_capacity=3,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )

    async def long_outage(fleet: Fleet) -> None:
        assert await await_for(lambda: sum(d == victim for d, _ in ledger.packs) >= 3, 10)
        fleet.nodes[victim].cut_link(outage_s=600.0)

    stats = run(fleet, 1200.0, long_outage)
    node = stats.per_device[victim]
    assert node.evicted >= 5
    assert node.sampled == node.messages_sent + node.evicted + node.undelivered
    assert stats.evicted == node.evicted
    sent = sorted(t for d, t in ledger.packs if d == victim)
    # What survived the outage is its newest samples: a gap, then consecutive times.
    gaps = [b - a for a, b in pairwise(sent)]
    assert max(gaps) == (node.evicted + 1) * 60_000


def test_a_broker_restart_is_bridged_by_store_and_forward(mosquitto_server, tag):
    endpoint = MqttEndpoint.from_url(mosquitto_server.url, protocol="3.1.1")
    specs = tagged_fleet(tag, 5)
    # A persistent session keeps what the fleet replays while this listener reconnects.
    listener = Listener(endpoint, tag, [ALL_TELEMETRY], persistent=True)
    ledger = Ledger()
    fleet = Fleet(
        specs,
        endpoint,
        SimulatedClock(START_S, SPEED),
        SEED,
        on_publish=ledger,
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
    )

    async def restart_broker(fleet: Fleet) -> None:
        assert await await_for(lambda: all(n.connected for n in fleet.nodes.values()), 10)
        await asyncio.to_thread(mosquitto_server.stop)
        await asyncio.sleep(0.6)  # 360 s of simulated time without a broker
        await asyncio.to_thread(mosquitto_server.start)

    try:
        stats = run(fleet, 2400.0, restart_broker)
        assert wait_for(
            lambda: (
                {(s.device, t) for s in specs for t in listener.sample_times(s.device)}
                >= set(ledger.packs)
            ),
            10,
        )
    finally:
        if not mosquitto_server.running:
            mosquitto_server.start()
        listener.close()
    assert stats.messages_sent == 5 * 40 == len(ledger.packs)
    assert stats.reconnects >= 5
    assert stats.buffered >= 5 * 4 and stats.replayed == stats.buffered
    assert stats.evicted == stats.undelivered == 0


def test_a_stop_event_ends_the_run_gracefully(endpoint, tag):
    specs = tagged_fleet(tag, 5)
    devices = {spec.device for spec in specs}
    fleet = Fleet(specs, endpoint, SimulatedClock(START_S, SPEED), SEED)

    async def main() -> FleetStats:
        stop = asyncio.Event()
        task = asyncio.create_task(fleet.run(stop=stop))  # no duration: runs until stopped
        await asyncio.sleep(0.8)
        stop.set()
        return await asyncio.wait_for(task, 10)

    stats = asyncio.run(main())
    assert stats.messages_sent >= 5 * 5
    assert stats.undelivered == 0
    after = Listener(endpoint, tag, [ALL_STATUS])
    try:
        assert wait_for(lambda: {h.address.device for h in after.snapshot()} == devices, 5)
        final = [json.loads(h.payload) for h in after.snapshot()]
    finally:
        after.close()
    assert {(s["state"], s["reason"]) for s in final} == {("offline", "stopped")}


def test_a_fleet_torn_down_without_a_stop_leaves_its_last_will(endpoint, tag):
    specs = tagged_fleet(tag, 5)
    devices = {spec.device for spec in specs}
    fleet = Fleet(specs, endpoint, SimulatedClock(START_S, SPEED), SEED)

    async def main() -> None:
        task = asyncio.create_task(fleet.run())
        await asyncio.sleep(0)
        assert await await_for(lambda: all(n.connected for n in fleet.nodes.values()), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)

    asyncio.run(main())
    after = Listener(endpoint, tag, [ALL_STATUS])
    try:
        assert wait_for(
            lambda: (
                {
                    h.address.device
                    for h in after.snapshot()
                    if json.loads(h.payload)["state"] == "offline"
                }
                == devices
            ),
            5,
        )
        final = [json.loads(h.payload) for h in after.snapshot()]
    finally:
        after.close()
    assert {s.get("reason") for s in final if s["state"] == "offline"} == {"lost"}


def test_run_fleet_runs_a_planned_fleet_to_completion(endpoint, tag):
    specs = tagged_fleet(tag, 4)
    stats = run_fleet(specs, endpoint, SimulatedClock(START_S, SPEED), SEED, duration_s=300.0)
    assert stats.devices == 4
    assert stats.messages_sent == 4 * 5
    assert stats.readings_sent == 4 * 5 * len(FIELD_NODE_SENSORS)
