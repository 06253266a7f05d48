"""The MQTT side of ingest: a persistent QoS 1 session, manual acknowledgement.

paho's network thread only queues messages; one writer thread takes batches
(by size and linger time), pushes them through the pipeline and acknowledges
them after they are stored. The broker bounds what is in flight: with MQTT 5
we announce ``Receive Maximum``; with 3.1.1 the broker's own in-flight limit
applies. So while the store is slow or down, acknowledgements stop, the
broker stops sending and holds the rest in the persistent session — memory
does not grow and nothing is dropped.

It never stalls silently:

* a failure retrying cannot fix — the store refusing for good
  (:class:`~agrimatch.store.StoreError`: bad credentials), or a bug that
  escapes the writer — ends the service with :attr:`MqttIngest.failure`
  set (one line, no secret), nothing of the batch acknowledged, so that the
  process exits non-zero and its supervisor sees it. A bug on one message
  only is dead-lettered by the pipeline instead (``internal_error``);
* every connection attempt that fails is logged with its reason and
  counted; :meth:`MqttIngest.run_until` gives up when the first connection
  has not succeeded within ``connect_timeout_s``. Once connected, a lost
  broker is retried for as long as it takes (the session keeps the
  messages), logged on each attempt and visible as ``connected 0``.

One replica (the default) subscribes ``agrimatch/v1/+/+/+/telemetry``
plainly: its persistent session keeps that subscription through a broker
restart (Mosquitto restores it from its persistence file), so a pack
published before ingest is back is queued for it, not dropped. N replicas
use the shared subscription ``$share/ingest/...`` (``shared``): Mosquitto
2.0 does not restore a session's shared subscription at restart, so packs
published between the broker's return and the replicas' re-subscription
reach nobody (docs/reliability.md has the figures). Ingest subscribes on
every connect, session present or not, and stops (failure set) when the
broker's SUBACK refuses the subscription.

A replica's persistent session outlives it by ``session_expiry_s`` and,
on the shared subscription, goes on taking its share of the messages in
that time. :meth:`MqttIngest.retire` ends such a session for good: it
resumes it, unsubscribes, stores what it held and ends it (session expiry 0).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from agrimatch.contract.topics import INGEST_SHARED_SUBSCRIPTION, TELEMETRY_SUBSCRIPTION
from agrimatch.mqtt import MqttEndpoint, last_connect_error, make_paho_client
from agrimatch.store import StoreError
from ingest.deadletter import DeadLetter
from ingest.pipeline import InboundMessage, TelemetryPipeline

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 3 * 24 * 3600
"""How long the broker keeps a persistent session (and its queue) after ingest leaves.

Sized with the broker's queue limits (``deploy/mosquitto.conf``): an ingest
outage of a long weekend. A longer expiry only keeps an abandoned replica's
share of the messages away from the others for longer."""


@dataclass(frozen=True, slots=True)
class IngestOptions:
    client_id: str = "agrimatch-ingest"
    # $share/ingest/...: N replicas split the load (not on amqtt). Off for one replica:
    # only a plain subscription survives a Mosquitto restart with the session.
    shared: bool = False
    # A persistent session keeps messages while ingest is down. Off only for
    # throw-away consumers (the demo): an abandoned persistent session in the
    # shared group would go on taking its share of messages until it expires.
    persistent: bool = True
    session_expiry_s: int = SESSION_EXPIRY_S
    batch_size: int = 2000
    linger_s: float = 0.2
    max_inflight: int = 10_000
    keepalive_s: int = 30
    stats_interval_s: float = 30.0
    # How long the first connection may take before run_until() gives up.
    connect_timeout_s: float = 30.0


@dataclass(slots=True)
class _Queued:
    message: InboundMessage
    generation: int


@dataclass(frozen=True, slots=True)
class RetireReport:
    """What :meth:`MqttIngest.retire` found and did."""

    session_present: bool  # the broker still held a session under this client id
    messages: int  # messages the session held (or its share received meanwhile), all acked


class MqttDeadLetterSink:
    """Publishes dead letters with QoS 1 on the ingest connection and waits for PUBACK."""

    def __init__(self, client: paho.Client, wait_step_s: float = 1.0) -> None:
        self._client = client
        self._wait_step_s = wait_step_s

    def send(self, letters: list[DeadLetter] | Any, stop: threading.Event) -> bool:
        # paho queues QoS 1 publishes while disconnected and sends them on reconnect,
        # so waiting is enough; we give up only on shutdown (the source messages are
        # then not acked and come back). Letters are bounded (ingest.deadletter), so
        # no broker limit that fits the contract refuses them.
        infos = [self._client.publish(x.dead_topic, x.to_json(), qos=1) for x in letters]
        for info in infos:
            while not info.is_published():
                if stop.is_set():
                    return False
                try:
                    info.wait_for_publish(self._wait_step_s)
                except (RuntimeError, ValueError):
                    stop.wait(self._wait_step_s)
        return True


class MqttIngest:
    """Consumes telemetry from the broker into the pipeline until stopped."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        pipeline_factory: Any,
        options: IngestOptions | None = None,
    ) -> None:
        """``pipeline_factory(dead_letter_sink) -> TelemetryPipeline`` builds the pipeline
        around this connection's dead-letter publisher."""
        self._endpoint = endpoint
        self._options = options or IngestOptions()
        self._client = make_paho_client(
            endpoint,
            self._options.client_id,
            clean_start=not self._options.persistent,
            manual_ack=True,
        )
        self.pipeline: TelemetryPipeline = pipeline_factory(MqttDeadLetterSink(self._client))
        self.metrics = self.pipeline.metrics
        # SimpleQueue: C-implemented, no task tracking; it sits on the per-message path.
        self._queue: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._generation = 0  # bumped per connection: acks never cross connections
        self._generation_lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._ever_connected = threading.Event()
        self._failed = threading.Event()
        self._failure: str | None = None
        self._last_connect_problem: str | None = None
        self._retiring = False
        self._session_present: bool | None = None
        self._writer: threading.Thread | None = None
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.reconnect_delay_set(1, 30)

    @property
    def connected(self) -> threading.Event:
        return self._connected

    @property
    def failure(self) -> str | None:
        """Why the service stopped for good (one line, no secret), or None while it works."""
        return self._failure

    @property
    def failed(self) -> threading.Event:
        """Set once :attr:`failure` is."""
        return self._failed

    @property
    def persistent(self) -> bool:
        """Whether the broker keeps this client id's session after it leaves."""
        return self._options.persistent

    @property
    def queue_depth(self) -> int:
        """Messages received from the broker and not yet taken by the writer."""
        return self._queue.qsize()

    @property
    def writer_alive(self) -> bool:
        return self._writer is not None and self._writer.is_alive()

    def start(self) -> None:
        """Connect (retrying in the background) and start the writer thread."""
        properties = None
        if self._endpoint.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            if self._options.persistent:
                properties.SessionExpiryInterval = self._options.session_expiry_s
            properties.ReceiveMaximum = self._options.max_inflight
            self._client.connect_async(
                self._endpoint.host,
                self._endpoint.port,
                self._options.keepalive_s,
                clean_start=not self._options.persistent,
                properties=properties,
            )
        else:
            self._client.connect_async(
                self._endpoint.host, self._endpoint.port, self._options.keepalive_s
            )
        self._client.loop_start()
        self._writer = threading.Thread(target=self._run_writer, name="ingest-writer", daemon=True)
        self._writer.start()

    def stop(self, timeout_s: float = 30.0, *, end_session: bool = False) -> None:
        """Graceful shutdown: store and acknowledge what has arrived, then disconnect.

        ``end_session`` also ends the broker session (MQTT 5: session expiry 0 on
        DISCONNECT; 3.1.1: a clean-session connect), as :meth:`retire` does.
        """
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout_s)
        if end_session and self._endpoint.protocol == "5":
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
            self._client.disconnect(properties=properties)
        else:
            self._client.disconnect()
        self._client.loop_stop()
        if end_session and self._endpoint.protocol != "5":
            # 3.1.1 has no session expiry to change: a clean session discards the old one.
            client = make_paho_client(self._endpoint, self._options.client_id, clean_start=True)
            client.connect(self._endpoint.host, self._endpoint.port, self._options.keepalive_s)
            client.loop_start()
            client.disconnect()
            client.loop_stop()

    def run_until(self, stop: threading.Event) -> str | None:
        """Start, log counters periodically, and stop when ``stop`` is set or the service
        fails; return :attr:`failure` (None after a requested stop).

        Fails when the first connection does not succeed within
        ``connect_timeout_s``, with the last reason the broker gave.
        """
        self.start()
        options = self._options
        deadline = time.monotonic() + options.connect_timeout_s
        next_stats = time.monotonic() + options.stats_interval_s
        try:
            while not stop.is_set() and not self._failed.is_set():
                now = time.monotonic()
                if not self._ever_connected.is_set() and now > deadline:
                    self._fail(
                        f"could not connect to the MQTT broker at {self._endpoint.display} "
                        f"within {options.connect_timeout_s:g} s "
                        f"({self._last_connect_problem or 'no answer'}); check "
                        "AGRIMATCH_MQTT_URL and that the broker runs"
                    )
                    break
                if now >= next_stats:
                    log.info("ingest %s", self.metrics.snapshot().as_dict())
                    next_stats = now + options.stats_interval_s
                stop.wait(0.25)
        finally:
            self.stop()
            log.info("ingest stopped %s", self.metrics.snapshot().as_dict())
        return self._failure

    def retire(self, idle_s: float = 5.0) -> RetireReport:
        """End this client id's persistent session without losing what it holds.

        Resumes the session, unsubscribes it from the telemetry subscription (the
        broker routes nothing new to it), stores and acknowledges what the broker
        still sends it, and once nothing has come for ``idle_s`` ends the session.
        Raises ``RuntimeError`` (with :attr:`failure`) if that cannot be done.
        """
        self._retiring = True
        self.start()
        try:
            deadline = time.monotonic() + self._options.connect_timeout_s
            while not self._ever_connected.is_set():
                if self._failed.wait(0.1):
                    raise RuntimeError(self._failure)
                if time.monotonic() > deadline:
                    self._fail(
                        f"could not connect to the MQTT broker at {self._endpoint.display} "
                        f"within {self._options.connect_timeout_s:g} s "
                        f"({self._last_connect_problem or 'no answer'})"
                    )
                    raise RuntimeError(self._failure)
            quiet_since = time.monotonic()
            last_seen = (-1, -1)
            while time.monotonic() - quiet_since < idle_s:
                if self._failed.wait(0.1):
                    raise RuntimeError(self._failure)
                snap = self.metrics.snapshot()
                seen = (snap.messages_received, snap.messages_acked)
                if seen != last_seen or snap.messages_acked < snap.messages_received:
                    last_seen, quiet_since = seen, time.monotonic()
        except BaseException:
            self.stop()  # the session stays: nothing it holds is lost
            raise
        self.stop(end_session=True)
        return RetireReport(bool(self._session_present), self.metrics.snapshot().messages_acked)

    # paho callbacks (network thread): never block, never raise.

    def _subscription(self) -> str:
        return INGEST_SHARED_SUBSCRIPTION if self._options.shared else TELEMETRY_SUBSCRIPTION

    def _other_subscription(self) -> str:
        return TELEMETRY_SUBSCRIPTION if self._options.shared else INGEST_SHARED_SUBSCRIPTION

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self.metrics.connect_failed()
            self._last_connect_problem = f"the broker refused the connection: {reason}"
            log.error(
                "MQTT broker at %s refused the connection: %s; retrying",
                self._endpoint.display,
                reason,
            )
            return
        with self._generation_lock:
            self._generation += 1
        topic = self._subscription()
        if self._retiring:
            # Nothing new is routed to a retiring session; what it holds still comes.
            self._session_present = bool(flags.session_present)
            client.unsubscribe(topic)
        else:
            # Always, also with the session present: Mosquitto 2.0 restores a session's
            # plain subscriptions after its restart but not its shared ones.
            if self._endpoint.protocol == "5":
                client.subscribe(topic, options=SubscribeOptions(qos=1))
            else:
                client.subscribe(topic, qos=1)
            if flags.session_present:
                # A session kept from a run in the other mode still holds that
                # subscription: every pack would come twice. Dropped after ours is in
                # place (the broker handles the two in order), so nothing falls between.
                client.unsubscribe(self._other_subscription())
        self.metrics.set_connected(True)
        log.info(
            "connected to the MQTT broker at %s as %r (session present: %s), subscribing %s",
            self._endpoint.display,
            self._options.client_id,
            flags.session_present,
            topic,
        )
        self._connected.set()
        self._ever_connected.set()

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        refused = [r for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            # Connected and subscribed to nothing would look alive and store nothing. (Not
            # Mosquitto 2.0's ACL: it grants every subscription and filters per message;
            # brokers that refuse say so here, e.g. 0x9E shared subscriptions unsupported.)
            self._fail(
                f"the MQTT broker refused ingest's subscription to {self._subscription()} "
                f"({refused[0]}); allow its user to read that topic in the broker's ACL "
                "(agrimatch devices provision writes it)"
            )
        else:
            log.info("subscribed %s", self._subscription())

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self.metrics.connect_failed()
        why = last_connect_error(client) or "connection failed"
        self._last_connect_problem = why
        log.warning("cannot reach the MQTT broker at %s: %s; retrying", self._endpoint.display, why)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected:
            self.metrics.set_connected(False)
            if not self._stop.is_set():
                log.warning(
                    "disconnected from the MQTT broker at %s (%s), reconnecting",
                    self._endpoint.display,
                    reason,
                )

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        generation = self._generation
        mid, qos = msg.mid, msg.qos

        def ack() -> None:
            # A message from an earlier connection is redelivered by the broker on the
            # new one; acking its old packet id here could acknowledge another message.
            if qos > 0 and generation == self._generation:
                client.ack(mid, qos)

        # Counted on arrival, so "received but not stored" shows even if the writer stops.
        self.metrics.received()
        self._queue.put(
            _Queued(InboundMessage(msg.topic, bytes(msg.payload), time.time(), ack), generation)
        )

    # writer thread

    def _run_writer(self) -> None:
        try:
            self._write_loop()
        except StoreError as exc:
            self._fail(
                f"the store refused the write for good: {exc}; retrying cannot fix this "
                "(check AGRIMATCH_INFLUX_URL and its credentials, AGRIMATCH_INFLUX_*)"
            )
        except BaseException as exc:
            log.error("the ingest writer failed", exc_info=True)
            self._fail(f"the ingest writer failed: {type(exc).__name__}: {exc}")

    def _fail(self, failure: str) -> None:
        if self._failure is None:
            self._failure = failure
        self._failed.set()

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                if self._stop.is_set():
                    return
                continue
            report = self.pipeline.process([q.message for q in batch], self._stop)
            if not report.acked:
                return  # stopped while the store was down; the broker redelivers

    def _next_batch(self) -> list[_Queued]:
        options = self._options
        try:
            first = self._queue.get(timeout=0.1 if not self._stop.is_set() else 0)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + options.linger_s
        while len(batch) < options.batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                break
            try:
                # Short waits: a shutdown must not sit out a long linger.
                batch.append(self._queue.get(timeout=min(remaining, 0.05)))
            except queue.Empty:
                continue
        return batch
