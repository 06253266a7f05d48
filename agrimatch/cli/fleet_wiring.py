"""Builds simulated fleets for the CLI (``sim``, ``demo``) and tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

from agrimatch.clock import Clock
from agrimatch.contract.telemetry import Reading
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint
from agrimatch.scenario import load_scenario
from firmware_sim import DeviceSpec, Fleet, FleetStats, plan_fleet
from firmware_sim.device import DeviceRealism
from firmware_sim.layout import plan_from_scenario

PublishCallback = Callable[[DeviceAddress, list[Reading]], None]


def run_fleet_until(
    endpoint: MqttEndpoint,
    clock: Clock,
    specs: Sequence[DeviceSpec],
    seed: int,
    duration_s: float | None,
    stop: threading.Event,
    on_publish: PublishCallback | None = None,
    realism: bool = False,
) -> FleetStats:
    """Run a fleet until ``duration_s`` of clock time passes or ``stop`` is set.

    ``realism`` gives the devices 5G outages, faults, clock drift and battery
    sleep (:class:`firmware_sim.device.DeviceRealism`); off, they are ideal.
    """

    async def main() -> FleetStats:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        fleet = Fleet(
            specs,
            endpoint,
            clock,
            seed,
            on_publish=on_publish,
            realism=DeviceRealism() if realism else None,
        )
        return await fleet.run(duration_s, done)

    return asyncio.run(main())


def fleet_specs(
    scenario: str | None, devices: int, seed: int, interval_s: float
) -> tuple[list[DeviceSpec], int]:
    """The devices of a scenario (and its seed), or a planned fleet of ``devices``."""
    if scenario is None:
        return plan_fleet(devices, seed, interval_s), seed
    loaded = load_scenario(scenario)
    return plan_from_scenario(loaded, interval_s=interval_s), loaded.seed
