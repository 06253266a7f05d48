"""A node's pure parts: its sampling grid, its store-and-forward buffer, its config messages."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from agrimatch.contract.telemetry import Reading
from firmware_sim._messages import (
    ConfigError,
    DeviceConfig,
    last_will_status,
    offline_status,
    online_status,
    parse_config,
)
from firmware_sim._outbox import Outbox, Pack
from firmware_sim._schedule import next_sample_ms


def _pack(t_ms: int) -> Pack:
    return Pack(t_ms, (Reading("air_temp", t_ms, 20.0),), b"{}")


# --- sampling grid --------------------------------------------------------------------


def test_sample_times_lie_on_the_interval_grid_shifted_by_the_phase():
    assert next_sample_ms(0, 60_000, 7_000) == 7_000
    assert next_sample_ms(7_000, 60_000, 7_000) == 67_000  # strictly after
    assert next_sample_ms(66_999, 60_000, 7_000) == 67_000


def test_a_phase_longer_than_a_new_shorter_interval_still_applies():
    assert next_sample_ms(0, 30_000, 45_000) == 15_000


def test_successive_sample_times_are_exactly_one_interval_apart_for_a_season():
    t = 1_717_200_000_123
    times = []
    for _ in range(100_000):
        t = next_sample_ms(t, 60_000, 30_653)
        times.append(t)
    assert {b - a for a, b in pairwise(times)} == {60_000}
    assert times[0] % 60_000 == 30_653


# --- store-and-forward buffer ---------------------------------------------------------


def test_the_buffer_hands_out_packs_oldest_first():
    box = Outbox(10)
    for t in (1, 2, 3):
        box.put(_pack(t))
    taken = []
    while (pack := box.take()) is not None:
        taken.append(pack.sample_ms)
        box.ack()
    assert taken == [1, 2, 3]
    assert len(box) == 0


def test_a_full_buffer_evicts_the_oldest_pack_and_counts_it():
    box = Outbox(3)
    evicted = [box.put(_pack(t)) for t in range(1, 6)]
    assert evicted == [0, 0, 0, 1, 1]
    assert box.evicted == 2
    assert [box.take().sample_ms, box.ack().sample_ms][0] == 3  # type: ignore[union-attr]


def test_a_pack_whose_publish_failed_goes_back_to_the_front():
    box = Outbox(5)
    for t in (1, 2):
        box.put(_pack(t))
    assert box.take().sample_ms == 1  # type: ignore[union-attr]
    box.nack()
    assert box.take().sample_ms == 1  # type: ignore[union-attr]


def test_the_pack_in_flight_is_never_evicted():
    box = Outbox(2)
    box.put(_pack(1))
    box.put(_pack(2))
    in_flight = box.take()
    box.put(_pack(3))  # evicts 2, not the pack at the broker's door
    box.put(_pack(4))  # evicts 3
    assert box.evicted == 2
    box.nack()
    order = []
    while (pack := box.take()) is not None:
        order.append(pack.sample_ms)
        box.ack()
    assert in_flight is not None and order == [1, 4]


def test_acknowledging_without_a_pack_in_flight_is_a_bug():
    with pytest.raises(RuntimeError):
        Outbox(1).ack()


# --- status and config messages -------------------------------------------------------


def test_status_messages_say_online_with_the_interval_or_offline():
    assert json.loads(online_status(30.0, 1717200000.5)) == {
        "state": "online",
        "interval_s": 30.0,
        "ts": 1717200000.5,
    }
    assert json.loads(offline_status(1.0))["state"] == "offline"
    assert json.loads(last_will_status()) == {"state": "offline", "reason": "lost"}


def test_a_config_sets_the_interval_and_unknown_keys_are_ignored():
    assert parse_config(b'{"interval_s": 30}') == DeviceConfig(interval_s=30.0)
    assert parse_config(b'{"thresholds": {"soil_moisture_10cm": 12}}') == DeviceConfig()


def test_an_empty_payload_is_a_cleared_config():
    assert parse_config(b"") is None


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[30]",
        b'{"interval_s": "30"}',
        b'{"interval_s": true}',
        b'{"interval_s": 0}',
        b'{"interval_s": 1e9}',
        b'{"interval_s": NaN}',
    ],
)
def test_a_config_the_node_cannot_use_is_refused(payload):
    with pytest.raises(ConfigError):
        parse_config(payload)
