"""A live fleet's clock: accelerated from the past, never ahead of the wall clock."""

from __future__ import annotations

import asyncio
import time

from firmware_sim.live_clock import DEFAULT_BACKLOG_S, LiveClock, live_start

NOW = 1_764_072_000.0


def test_an_accelerated_run_of_known_length_starts_that_length_back():
    assert live_start(60.0, 900.0, now=NOW) == NOW - 900.0


def test_an_open_ended_accelerated_run_starts_a_day_back():
    assert live_start(60.0, None, now=NOW) == NOW - DEFAULT_BACKLOG_S


def test_a_real_time_run_starts_now():
    assert live_start(1.0, 900.0, now=NOW) == NOW


def test_the_clock_runs_fast_from_the_past_and_stops_at_the_wall_clock():
    clock = LiveClock(time.time() - 5.0, speed=1000.0)  # catches up within ~5 ms
    deadline = time.monotonic() + 30
    while clock.speed != 1.0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert clock.speed == 1.0
    for _ in range(100):
        assert clock.now() <= time.time()


def test_a_sleep_across_the_catch_up_point_lasts_until_its_clock_time():
    clock = LiveClock(time.time() - 1.0, speed=100.0)  # 10 ms of fast time, then real
    target = clock.now() + 1.2
    asyncio.run(clock.asleep(1.2))
    assert clock.now() >= target
