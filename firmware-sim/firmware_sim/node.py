"""One simulated 5G sensor node: samples on schedule, publishes over MQTT, stores and forwards.

A node is three concurrent loops in one asyncio task group:

* the **sampler** reads the sensors at every sample time (clock time, on the
  grid ``k * interval + phase``) and queues the encoded SenML pack in the
  outbox, whether or not the link is up;
* the **link** keeps an MQTT connection (own client id, retained last will,
  retained birth, subscription to the retained config topic), reconnecting
  with backoff when it drops;
* per connection, a **sender** drains the outbox oldest first (QoS 1, a pack
  leaves the outbox only on PUBACK) and a **listener** applies config;
* with a device model, a **radio** loop cuts the link for each coverage
  outage the model foresees, and restores it when the outage ends.

The node knows its sensors only through a *probe* (``spec, t_s -> readings``):
it never sees the world model behind them, so physics, sensor faults and
drift can change without touching it. A :class:`~firmware_sim.device.DeviceModel`
says more than a probe: whether the device has coverage (no publishing during
an outage: packs wait in the bounded outbox and are replayed afterwards with
their original sample times) and whether its battery sent it to low-power
sleep (no sampling; the status says so, and says so again on waking).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiomqtt

from agrimatch.clock import Clock
from agrimatch.contract import DeviceAddress
from agrimatch.contract.telemetry import Reading, encode_telemetry
from agrimatch.mqtt import MqttEndpoint
from firmware_sim import _messages
from firmware_sim._connect import abort_connection, make_client
from firmware_sim._outbox import Outbox, Pack
from firmware_sim._schedule import next_sample_ms, to_ms
from firmware_sim.device.model import DeviceModel
from firmware_sim.layout import DeviceSpec

log = logging.getLogger(__name__)

NO_OUTAGE_RECHECK_S = 365 * 86_400.0  # when the radio foresees no outage, look again after

Probe = Callable[[DeviceSpec, float], list[Reading]]
"""Reads a device's sensors at a clock time: ``probe(spec, t_s) -> readings``."""

PublishCallback = Callable[[DeviceAddress, list[Reading]], None]
"""Told about every telemetry pack the broker acknowledged (PUBACK)."""


@dataclass(slots=True)
class NodeStats:
    """What one node did during a run."""

    device: str
    sampled: int = 0  # packs made, one per sample time
    messages_sent: int = 0  # telemetry packs acknowledged by the broker
    readings_sent: int = 0  # readings in those packs
    buffered: int = 0  # packs sampled while the link was down (held for a reconnect)
    replayed: int = 0  # of those, delivered after the link came back
    evicted: int = 0  # packs dropped because the buffer was full
    undelivered: int = 0  # packs still in the buffer when the node stopped
    connects: int = 0
    reconnects: int = 0  # connects after the first
    configs_applied: int = 0  # config messages that changed a setting
    configs_rejected: int = 0  # config messages that could not be used
    outages: int = 0  # coverage outages that began (or were under way) while running
    faulty_readings: int = 0  # readings a sensor fault touched (dropouts included)
    empty_samples: int = 0  # sample times whose every reading dropped out: nothing to send
    sleeps: int = 0  # times the battery sent the device to low-power sleep
    slept_samples: int = 0  # sample times skipped asleep


class Node:
    """A sensor node. Construct, then ``await node.run(...)`` inside an event loop.

    Timing: sample times and outages are clock time (simulated when the clock
    is accelerated); reconnect backoff and publish timeouts are real time,
    because they protect a real broker, whatever the simulated speed.
    """

    def __init__(
        self,
        spec: DeviceSpec,
        endpoint: MqttEndpoint,
        clock: Clock,
        probe: Probe,
        *,
        on_publish: PublishCallback | None = None,
        connect_gate: asyncio.Semaphore | None = None,
        buffer_capacity: int = 1000,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        keepalive_s: int = 30,
        publish_timeout_s: float = 10.0,
        flush_timeout_s: float = 5.0,
        device_model: DeviceModel | None = None,
    ) -> None:
        self.spec = spec
        self.endpoint = endpoint
        self.clock = clock
        self.probe = probe
        self.on_publish = on_publish
        self.connect_gate = connect_gate
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.keepalive_s = keepalive_s
        self.publish_timeout_s = publish_timeout_s
        self.flush_timeout_s = flush_timeout_s
        self.device_model = device_model
        """Readings, coverage and power; when set, ``probe`` is not used (the model has its own)."""
        self.stats = NodeStats(spec.device)

        self._sampling_spec = spec  # the spec with the interval currently configured
        self._outbox = Outbox(buffer_capacity)
        self._client: aiomqtt.Client | None = None  # the live connection, if any
        self._announced = False  # birth published on the live connection
        self._link_down_until_s = -math.inf  # clock time a radio outage lasts until
        self._outage_end_s = -math.inf  # end of the last coverage outage counted
        self._asleep = False  # low-power sleep (battery)
        self._battery_soc: float | None = None
        self._status_pending = False  # the status changed since it was last published
        self._wake_sampler = asyncio.Event()  # stop requested or interval changed
        self._packs_ready = asyncio.Event()  # the outbox got a pack, or closing began
        self._stopping = False
        self._closing = False
        self._closing_started = asyncio.Event()
        self._flush_deadline = math.inf  # loop time by which closing must be done
        self._jitter = random.Random(spec.device)

    # --- what a test or a radio model may look at or do ---------------------------------

    @property
    def address(self) -> DeviceAddress:
        return self.spec.address

    @property
    def interval_s(self) -> float:
        """The sampling interval in force (the spec's, until a config changes it)."""
        return self._sampling_spec.interval_s

    @property
    def connected(self) -> bool:
        """Connected, the birth status published, and the radio not cut."""
        return self._announced and self._link_down_until_s <= self.clock.now()

    @property
    def asleep(self) -> bool:
        """In low-power sleep: not sampling until the battery has recharged."""
        return self._asleep

    def cut_link(self, outage_s: float = 0.0) -> None:
        """Lose the radio link now, without an MQTT goodbye, for ``outage_s`` clock seconds.

        The broker publishes the node's last will; the node keeps sampling into
        its buffer and reconnects (with backoff) once the outage is over.
        """
        self._link_down_until_s = max(self._link_down_until_s, self.clock.now() + outage_s)
        if self._client is not None:
            abort_connection(self._client)

    # --- the node's life ----------------------------------------------------------------

    async def run(
        self,
        stop: asyncio.Event | None = None,
        *,
        start_s: float | None = None,
        until_s: float | None = None,
    ) -> NodeStats:
        """Sample from ``start_s`` (default: now) until ``until_s`` or ``stop``, then go offline.

        Samples at every grid time in ``[start_s, until_s)``. When sampling ends the
        node flushes its buffer (for at most ``flush_timeout_s`` real seconds),
        publishes its offline status and disconnects cleanly.
        """
        start_ms = to_ms(self.clock.now() if start_s is None else start_s)
        until_ms = None if until_s is None else to_ms(until_s)
        tasks: list[asyncio.Task[None]] = []
        try:
            if stop is not None:
                tasks.append(asyncio.create_task(self._watch(stop)))
            if self.device_model is not None:
                # Created before the link, so an outage under way at the start is
                # known before the first connect.
                tasks.append(asyncio.create_task(self._follow_radio(self.device_model)))
            sampler = asyncio.create_task(self._sample(start_ms, until_ms))
            link = asyncio.create_task(self._keep_link())
            tasks += [sampler, link]
            await asyncio.wait({sampler, link}, return_when=asyncio.FIRST_COMPLETED)
            if link.done():
                # The link only ends on its own by failing (a bug, or the callback raising).
                link.result()
                raise RuntimeError(f"{self.spec.device}: link loop ended while sampling")
            sampler.result()
            self._closing = True
            self._flush_deadline = asyncio.get_running_loop().time() + self.flush_timeout_s
            self._closing_started.set()
            self._packs_ready.set()
            await link
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.stats.undelivered = len(self._outbox)
        return self.stats

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping = True
        self._wake_sampler.set()

    # --- sampler ------------------------------------------------------------------------

    async def _sample(self, start_ms: int, until_ms: int | None) -> None:
        last_ms = start_ms - 1
        phase_ms = to_ms(self.spec.phase_s)
        while not self._stopping:
            # Recomputed each time round, so a new interval applies from the next sample.
            t_ms = next_sample_ms(last_ms, to_ms(self.interval_s), phase_ms)
            if until_ms is not None and t_ms >= until_ms:
                return
            delay_s = t_ms / 1000 - self.clock.now()
            if delay_s > 0:
                self._wake_sampler.clear()
                if await self._sleep_unless_woken(delay_s):
                    continue
            # A sample time already past (the event loop fell behind an accelerated
            # clock) is still taken, at its own time: the simulated device did not miss it.
            self._take_sample(t_ms)
            last_ms = t_ms
            if delay_s <= 0:
                await asyncio.sleep(0)  # catching up: let the other nodes run too

    async def _sleep_unless_woken(self, delay_s: float) -> bool:
        """Sleep ``delay_s`` clock seconds; return True if woken early."""
        sleeper = asyncio.create_task(self.clock.asleep(delay_s))
        waker = asyncio.create_task(self._wake_sampler.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
        return waker.done() and not waker.cancelled()

    def _take_sample(self, t_ms: int) -> None:
        t_s = t_ms / 1000
        link_up = True
        if self.device_model is None:
            readings = self.probe(self._sampling_spec, t_s)
        else:
            seen = self.device_model.observe(self._sampling_spec, t_s)
            self._set_power(seen.asleep, seen.battery_soc)
            if not seen.link_up:
                # Do not wait for the radio loop: nothing may leave once coverage is gone.
                self._enter_outage(t_s)
            link_up = seen.link_up
            self.stats.faulty_readings += len(seen.faults)
            if seen.asleep:
                self.stats.slept_samples += 1
                return
            readings = list(seen.readings)
        if not readings:
            self.stats.empty_samples += 1  # SenML needs a record; a real device sends nothing
            return
        # The pack carries the device's own time stamp (its clock may drift from t_s).
        stamp_s = readings[0].time_ms / 1000
        pack = Pack(
            sample_ms=readings[0].time_ms,
            readings=tuple(readings),
            payload=encode_telemetry(self.spec.device, readings, base_time_s=stamp_s),
            buffered=not (link_up and self.connected),
        )
        self.stats.sampled += 1
        self.stats.buffered += pack.buffered
        self.stats.evicted += self._outbox.put(pack)
        self._packs_ready.set()

    # --- radio and power ----------------------------------------------------------------

    async def _follow_radio(self, model: DeviceModel) -> None:
        """Cut the link at each coverage outage the model foresees, for as long as it lasts."""
        while True:
            now_s = self.clock.now()
            outage = model.next_outage(self.spec.device, now_s)
            if outage is None:
                await self.clock.asleep(NO_OUTAGE_RECHECK_S)
            elif outage.start_s > now_s:
                await self.clock.asleep(outage.start_s - now_s)
            else:
                self._enter_outage(now_s)
                await self.clock.asleep(outage.end_s - now_s)

    def _enter_outage(self, t_s: float) -> None:
        """The device has no coverage at ``t_s``: cut the link until the outage ends."""
        assert self.device_model is not None
        outage = self.device_model.radio.outage_at(self.spec.device, t_s)
        if outage is None or outage.end_s <= self._outage_end_s:
            return  # already known
        if outage.start_s >= self._outage_end_s:
            self.stats.outages += 1  # a new outage, not one that grew longer
        self._outage_end_s = outage.end_s
        outage_s = outage.end_s - self.clock.now()
        if outage_s > 0:
            self.cut_link(outage_s)

    def _set_power(self, asleep: bool, battery_soc: float | None) -> None:
        """Track the battery; a change between awake and asleep is announced in the status."""
        self._battery_soc = battery_soc
        if asleep == self._asleep:
            return
        self._asleep = asleep
        self.stats.sleeps += asleep
        self._status_pending = True
        self._packs_ready.set()  # the sender publishes the status
        log.info("%s: %s", self.spec.device, "asleep (low battery)" if asleep else "awake")

    # --- link ---------------------------------------------------------------------------

    def _flush_time_left(self) -> float:
        return self._flush_deadline - asyncio.get_running_loop().time()

    async def _keep_link(self) -> None:
        backoff_s = self.backoff_initial_s
        while True:
            if self._closing and (not self._outbox or self._flush_time_left() <= 0):
                # Nothing left to say, or no time left to say it; if the link is down
                # the broker has already published the last will.
                return
            outage_s = self._link_down_until_s - self.clock.now()
            if outage_s > 0:
                await self._pause(self.clock.asleep(outage_s))
                continue
            connects_before = self.stats.connects
            try:
                await self._session()
                return
            except (aiomqtt.MqttError, OSError) as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Tearing down the link on cancellation can raise MqttError in
                    # place of the CancelledError; the cancellation must win.
                    raise asyncio.CancelledError from exc
                log.debug("%s: link lost: %s", self.spec.device, exc)
            if self.stats.connects > connects_before:
                backoff_s = self.backoff_initial_s  # it did connect: start afresh
            # Full jitter keeps a fleet that lost the broker together from returning together.
            delay_s = self._jitter.uniform(0.5, 1.0) * backoff_s
            backoff_s = min(self.backoff_max_s, backoff_s * 2)
            await self._pause(asyncio.sleep(delay_s))

    async def _pause(self, waiting: Coroutine[Any, Any, None]) -> None:
        """Await ``waiting`` (a backoff or an outage), cut short once closing runs out of time."""
        task = asyncio.create_task(waiting)
        closing = asyncio.create_task(self._closing_started.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                await asyncio.wait({task}, timeout=max(0.0, self._flush_time_left()))
        finally:
            task.cancel()
            closing.cancel()

    async def _session(self) -> None:
        """One connection, CONNECT to clean DISCONNECT; raises MqttError if the link breaks."""
        will = aiomqtt.Will(
            self.address.status_topic, _messages.last_will_status(), qos=1, retain=True
        )
        client = make_client(
            self.endpoint,
            self.spec.device,
            will=will,
            keepalive_s=self.keepalive_s,
            timeout_s=self.publish_timeout_s,
        )
        async with contextlib.AsyncExitStack() as exits:
            # The gate bounds concurrent connects only, so a large fleet starting (or
            # coming back after a broker restart) does not stampede the broker.
            async with self.connect_gate or contextlib.nullcontext():
                await exits.enter_async_context(client)
            self._client = client
            exits.callback(self._forget_client)
            self.stats.connects += 1
            self.stats.reconnects = self.stats.connects - 1
            try:
                if self._link_down_until_s > self.clock.now():
                    # The link was cut while this connect was under way.
                    raise aiomqtt.MqttError("radio link down")
                await client.subscribe(self.address.config_topic, qos=1)
                self._status_pending = False  # the birth tells the current state
                await self._publish_status(client, self._current_status())
                self._announced = True
                await self._serve(client)
            except (aiomqtt.MqttError, asyncio.CancelledError):
                # Whatever broke (a timeout on a half-dead link included), or if the node
                # is torn down without a graceful stop, leave like a device that lost its
                # radio: no DISCONNECT, so the broker publishes the will and the retained
                # status does not keep saying "online".
                abort_connection(client)
                raise
            timeout_s = min(self.publish_timeout_s, max(1.0, self._flush_time_left()))
            await client.publish(
                self.address.status_topic,
                _messages.offline_status(self.clock.now()),
                qos=1,
                retain=True,
                timeout=timeout_s,
            )
        # Leaving the exit stack sent DISCONNECT: a clean goodbye, no last will.

    def _forget_client(self) -> None:
        self._client = None
        self._announced = False

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Run sender and listener until the sender is done (closing) or the link breaks."""
        sender = asyncio.create_task(self._send(client))
        listener = asyncio.create_task(self._listen(client))
        try:
            await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, listener):
                if not task.done():
                    task.cancel()
            await asyncio.gather(sender, listener, return_exceptions=True)
        if listener.done() and not listener.cancelled():
            listener.result()  # the link broke: MqttError
        sender.result()

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            if self._closing and self._flush_time_left() <= 0:
                return
            if self._link_down_until_s > self.clock.now():
                # The radio is cut; the link loop is about to notice. Send nothing meanwhile.
                raise aiomqtt.MqttError("radio link down")
            if self._status_pending:
                self._status_pending = False
                try:
                    await self._publish_status(client, self._current_status())
                except BaseException:
                    self._status_pending = True
                    raise
                continue
            pack = self._outbox.take()
            if pack is None:
                if self._closing:
                    return
                self._packs_ready.clear()
                await self._packs_ready.wait()
                continue
            timeout_s = self.publish_timeout_s
            if self._closing:
                timeout_s = min(timeout_s, max(0.1, self._flush_time_left()))
            try:
                await client.publish(
                    self.address.telemetry_topic, pack.payload, qos=1, timeout=timeout_s
                )
            except BaseException:
                # Not acknowledged: keep it, first in line for the next connection.
                self._outbox.nack()
                raise
            self._outbox.ack()
            self.stats.messages_sent += 1
            self.stats.readings_sent += len(pack.readings)
            self.stats.replayed += pack.buffered
            if self.on_publish is not None:
                self.on_publish(self.address, list(pack.readings))

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if message.topic.value != self.address.config_topic:
                continue
            payload = message.payload
            raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
            if isinstance(payload, str | int | float):
                raw = str(payload).encode()
            try:
                config = _messages.parse_config(raw)
            except _messages.ConfigError as exc:
                self.stats.configs_rejected += 1
                log.warning("%s: config refused: %s", self.spec.device, exc)
                continue
            if config is None or config.interval_s is None:
                continue
            if to_ms(config.interval_s) == to_ms(self.interval_s):
                continue  # the retained config again, after a reconnect
            self._sampling_spec = dataclasses.replace(self.spec, interval_s=config.interval_s)
            self._wake_sampler.set()
            self.stats.configs_applied += 1
            # Confirm: the next status tells what the device now does.
            await self._publish_status(client, self._current_status())

    def _current_status(self) -> bytes:
        """Online with the interval in force, or asleep with the battery's charge."""
        if self._asleep:
            return _sleep_status(self.interval_s, self._battery_soc, self.clock.now())
        return _messages.online_status(self.interval_s, self.clock.now())

    async def _publish_status(self, client: aiomqtt.Client, payload: bytes) -> None:
        await client.publish(self.address.status_topic, payload, qos=1, retain=True)


def _sleep_status(interval_s: float, battery_soc: float | None, ts_s: float) -> bytes:
    """Status of a node gone to low-power sleep: reachable, but sampling nothing until charged.

    Same shape as the online status (``interval_s`` included, so a config
    change is confirmed while asleep too), with the reason and the charge.
    """
    status: dict[str, object] = {
        "state": "sleep",
        "reason": "low_battery",
        "interval_s": interval_s,
        "ts": round(ts_s, 3),
    }
    if battery_soc is not None:
        status["battery_soc"] = round(battery_soc, 3)
    return json.dumps(status, separators=(",", ":")).encode()
