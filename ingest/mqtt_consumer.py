"""The MQTT side of ingest: a persistent QoS 1 session, manual acknowledgement.

paho's network thread only queues messages; one writer thread takes batches
(by size and linger time), pushes them through the pipeline and acknowledges
them after they are stored. The broker bounds what is in flight: with MQTT 5
we announce ``Receive Maximum``; with 3.1.1 the broker's own in-flight limit
applies. So while the store is slow or down, acknowledgements stop, the
broker stops sending and holds the rest in the persistent session — memory
does not grow and nothing is dropped.
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
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from ingest.deadletter import DeadLetter
from ingest.pipeline import InboundMessage, TelemetryPipeline

log = logging.getLogger(__name__)

# A persistent session outlives any ingest restart or deploy we plan for.
SESSION_EXPIRY_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class IngestOptions:
    client_id: str = "agrimatch-ingest"
    shared: bool = True  # $share/ingest/...: N replicas split the load (not on amqtt)
    # A persistent session keeps messages while ingest is down. Off only for
    # throw-away consumers (the demo): an abandoned persistent session in the
    # shared group would go on taking its share of messages until it expires.
    persistent: bool = True
    batch_size: int = 2000
    linger_s: float = 0.2
    max_inflight: int = 10_000
    keepalive_s: int = 30
    stats_interval_s: float = 30.0


@dataclass(slots=True)
class _Queued:
    message: InboundMessage
    generation: int


class MqttDeadLetterSink:
    """Publishes dead letters with QoS 1 on the ingest connection and waits for PUBACK."""

    def __init__(self, client: paho.Client, wait_step_s: float = 1.0) -> None:
        self._client = client
        self._wait_step_s = wait_step_s

    def send(self, letters: list[DeadLetter] | Any, stop: threading.Event) -> bool:
        # paho queues QoS 1 publishes while disconnected and sends them on reconnect,
        # so waiting is enough; we give up only on shutdown (the source messages are
        # then not acked and come back).
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
        self._writer: threading.Thread | None = None
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 30)

    @property
    def connected(self) -> threading.Event:
        return self._connected

    def start(self) -> None:
        """Connect (retrying in the background) and start the writer thread."""
        properties = None
        if self._endpoint.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            if self._options.persistent:
                properties.SessionExpiryInterval = SESSION_EXPIRY_S
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
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._writer.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Graceful shutdown: store and acknowledge what has arrived, then disconnect."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()

    def run_forever(self) -> None:
        """Start, log counters periodically, stop on KeyboardInterrupt/SIGTERM."""
        self.start()
        try:
            while not self._stop.wait(self._options.stats_interval_s):
                log.info("ingest %s", self.metrics.snapshot().as_dict())
        finally:
            self.stop()
            log.info("ingest stopped %s", self.metrics.snapshot().as_dict())

    # paho callbacks (network thread): never block, never raise.

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        with self._generation_lock:
            self._generation += 1
        topic = INGEST_SHARED_SUBSCRIPTION if self._options.shared else TELEMETRY_SUBSCRIPTION
        if self._endpoint.protocol == "5":
            client.subscribe(topic, options=SubscribeOptions(qos=1))
        else:
            client.subscribe(topic, qos=1)
        log.info("connected to %r (session present: %s)", self._endpoint, flags.session_present)
        self._connected.set()

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s), reconnecting", reason)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        generation = self._generation
        mid, qos = msg.mid, msg.qos

        def ack() -> None:
            # A message from an earlier connection is redelivered by the broker on the
            # new one; acking its old packet id here could acknowledge another message.
            if qos > 0 and generation == self._generation:
                client.ack(mid, qos)

        self._queue.put(
            _Queued(InboundMessage(msg.topic, bytes(msg.payload), time.time(), ack), generation)
        )

    # writer thread

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                if self._stop.is_set():
                    return
                continue
            self.metrics.add(messages_received=len(batch))
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
