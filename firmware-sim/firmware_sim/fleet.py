"""Run a fleet of simulated nodes concurrently in one event loop.

Devices are ideal by default (readings exactly as the environment gives them,
coverage always): pass ``realism=DeviceRealism()`` for devices with outages,
batteries, drifting clocks and faulty sensors (see :mod:`firmware_sim.device`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

from agrimatch.clock import Clock
from agrimatch.contract.telemetry import Reading
from agrimatch.mqtt import MqttEndpoint
from firmware_sim.device.model import DeviceModel, DeviceRealism
from firmware_sim.layout import DeviceSpec
from firmware_sim.node import Node, NodeStats, Probe, PublishCallback
from firmware_sim.signals import sample

DEFAULT_CONNECT_CONCURRENCY = 32


@dataclass(slots=True)
class FleetStats:
    """Totals of a fleet run, and each device's own (see :class:`NodeStats`)."""

    devices: int
    messages_sent: int = 0
    readings_sent: int = 0
    buffered: int = 0
    replayed: int = 0
    evicted: int = 0
    undelivered: int = 0
    reconnects: int = 0
    outages: int = 0
    faulty_readings: int = 0
    empty_samples: int = 0
    sleeps: int = 0
    slept_samples: int = 0
    per_device: dict[str, NodeStats] = field(default_factory=dict)

    @classmethod
    def collect(cls, per_node: Sequence[NodeStats]) -> FleetStats:
        """Sum the nodes' stats."""
        stats = cls(devices=len(per_node), per_device={s.device: s for s in per_node})
        for s in per_node:
            stats.messages_sent += s.messages_sent
            stats.readings_sent += s.readings_sent
            stats.buffered += s.buffered
            stats.replayed += s.replayed
            stats.evicted += s.evicted
            stats.undelivered += s.undelivered
            stats.reconnects += s.reconnects
            stats.outages += s.outages
            stats.faulty_readings += s.faulty_readings
            stats.empty_samples += s.empty_samples
            stats.sleeps += s.sleeps
            stats.slept_samples += s.slept_samples
        return stats


def seeded_probe(seed: int) -> Probe:
    """The default probe: :func:`firmware_sim.signals.sample` with the fleet's seed."""

    def probe(spec: DeviceSpec, t_s: float) -> list[Reading]:
        return sample(spec, seed, t_s)

    return probe


class Fleet:
    """Simulated devices publishing to one broker.

    Parameters are stored as given; nothing connects until :meth:`run`.
    ``on_publish`` is called once per telemetry pack the broker acknowledged,
    with the device's address and the pack's readings (as published: device
    time stamps, faults applied). ``probe`` replaces the default signals
    (``seeded_probe(seed)``), e.g. with a world model.

    ``realism`` (default None: ideal devices) wraps the probe in a
    :class:`~firmware_sim.device.DeviceModel` with those settings;
    ``device_model`` passes one ready-made instead (it wins over ``realism``
    and ``probe``). Either way it is ``self.device_model``, whose
    ``fault_log`` holds the truth of the run's faulty readings.
    The remaining keywords are passed to every :class:`Node`.
    """

    def __init__(
        self,
        specs: Sequence[DeviceSpec],
        endpoint: MqttEndpoint,
        clock: Clock,
        seed: int,
        *,
        on_publish: PublishCallback | None = None,
        probe: Probe | None = None,
        connect_concurrency: int = DEFAULT_CONNECT_CONCURRENCY,
        buffer_capacity: int = 1000,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        flush_timeout_s: float = 5.0,
        realism: DeviceRealism | None = None,
        device_model: DeviceModel | None = None,
    ) -> None:
        self.specs = list(specs)
        self.endpoint = endpoint
        self.clock = clock
        self.seed = seed
        self.on_publish = on_publish
        self.probe = probe
        self.connect_concurrency = connect_concurrency
        self.buffer_capacity = buffer_capacity
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.flush_timeout_s = flush_timeout_s
        self.realism = realism
        if device_model is None and realism is not None:
            device_model = DeviceModel(probe or seeded_probe(seed), seed, realism)
        self.device_model = device_model
        self.nodes: dict[str, Node] = {}
        """The running nodes by device id; filled when :meth:`run` starts."""

    async def run(
        self, duration_s: float | None = None, stop: asyncio.Event | None = None
    ) -> FleetStats:
        """Run every node until ``duration_s`` clock seconds have passed or ``stop`` is set.

        Every node samples the grid times in ``[start, start + duration_s)``, so a
        run's message count does not depend on how fast the nodes connected.
        With neither argument the fleet runs until cancelled. Raises the first
        node failure (the other nodes are cancelled).
        """
        if duration_s is not None and duration_s < 0:
            raise ValueError("duration_s must not be negative")
        devices = [spec.device for spec in self.specs]
        if len(set(devices)) != len(devices):
            raise ValueError("device ids in a fleet must be unique")
        if self.connect_concurrency < 1:
            raise ValueError("connect_concurrency must be at least 1")

        gate = asyncio.Semaphore(self.connect_concurrency)
        probe = self.probe or seeded_probe(self.seed)
        self.nodes = {
            spec.device: Node(
                spec,
                self.endpoint,
                self.clock,
                probe,
                on_publish=self.on_publish,
                connect_gate=gate,
                buffer_capacity=self.buffer_capacity,
                backoff_initial_s=self.backoff_initial_s,
                backoff_max_s=self.backoff_max_s,
                flush_timeout_s=self.flush_timeout_s,
                device_model=self.device_model,
            )
            for spec in self.specs
        }
        # One start time for all: the window does not shift with connect order.
        start_s = self.clock.now()
        until_s = None if duration_s is None else start_s + duration_s
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(node.run(stop, start_s=start_s, until_s=until_s))
                for node in self.nodes.values()
            ]
        return FleetStats.collect([task.result() for task in tasks])


def run_fleet(
    specs: Sequence[DeviceSpec],
    endpoint: MqttEndpoint,
    clock: Clock,
    seed: int,
    *,
    duration_s: float | None = None,
    on_publish: PublishCallback | None = None,
    connect_concurrency: int = DEFAULT_CONNECT_CONCURRENCY,
    realism: DeviceRealism | None = None,
) -> FleetStats:
    """Run a fleet to completion in a new event loop (the blocking form of :meth:`Fleet.run`).

    ``realism`` as for :class:`Fleet` (default: ideal devices).

    SIGINT and SIGTERM stop it gracefully: nodes flush, publish offline and disconnect.
    """

    async def main() -> FleetStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Not available off the main thread or on Windows: then Ctrl-C just cancels.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)
        fleet = Fleet(
            specs,
            endpoint,
            clock,
            seed,
            on_publish=on_publish,
            connect_concurrency=connect_concurrency,
            realism=realism,
        )
        return await fleet.run(duration_s, stop)

    return asyncio.run(main())
