"""HTTP telemetry: a device's SenML pack through the same pipeline as MQTT.

The device's registry row gives the address an MQTT message would carry in
its topic (``agrimatch/v1/{farm}/{field}/{device}/telemetry``); the pack then
goes through :class:`ingest.pipeline.TelemetryPipeline` unchanged: the same
decoding, validation, idempotent points and dead letters with a reason.

Where MQTT waits for the store with the message unacknowledged, an HTTP
request retries for a bounded time (``AGRIMATCH_API_STORE_WAIT_S``) and then
answers 503: the device keeps the pack and sends it again. Nothing is
acknowledged that was not stored.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Sequence

from agrimatch.clock import Clock
from agrimatch.contract.topics import DeviceAddress
from agrimatch.store import StoreUnavailable
from ingest.deadletter import DeadLetter
from ingest.pipeline import InboundMessage, MessageOutcome, TelemetryPipeline

log = logging.getLogger(__name__)

DEAD_LETTERS_KEPT = 1000


class RecentDeadLetters:
    """A bounded dead-letter sink: the newest letters, and a count of all by reason.

    HTTP has no dead-letter topic of its own; the letters are logged, counted
    (``/metrics``) and the newest kept for inspection, while the device learns
    each reason from the response itself.
    """

    def __init__(self, capacity: int = DEAD_LETTERS_KEPT) -> None:
        self._letters: deque[DeadLetter] = deque(maxlen=capacity)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send(self, letters: Sequence[DeadLetter], stop: threading.Event) -> bool:
        with self._lock:
            self._letters.extend(letters)
            self._counts.update(letter.reason.value for letter in letters)
        for letter in letters:
            log.info("dead-lettered %s: %s (%s)", letter.topic, letter.reason.value, letter.detail)
        return True

    def counts(self) -> dict[str, int]:
        """Dead letters ever sent, by reason."""
        with self._lock:
            return dict(self._counts)

    def recent(self) -> list[DeadLetter]:
        """The newest letters, oldest first (at most the capacity)."""
        with self._lock:
            return list(self._letters)


class HttpTelemetry:
    """Runs one device's pack through the pipeline, waiting a bounded time for the store."""

    def __init__(self, pipeline: TelemetryPipeline, clock: Clock, store_wait_s: float) -> None:
        self.pipeline = pipeline
        self._clock = clock
        self._store_wait_s = store_wait_s
        self._lock = threading.Lock()
        self._records_rejected: Counter[str] = Counter()
        self._packs_rejected: Counter[str] = Counter()

    def ingest(self, address: DeviceAddress, payload: bytes) -> MessageOutcome:
        """Store the pack of the device at ``address``; its outcome, record by record.

        Raises ``StoreUnavailable`` when the store stayed unavailable for the
        whole wait: then nothing of the pack was stored or dead-lettered.
        """
        message = InboundMessage(address.telemetry_topic, payload, self._clock.now())
        stop = threading.Event()
        timer = threading.Timer(self._store_wait_s, stop.set)
        timer.daemon = True
        if self._store_wait_s > 0:
            timer.start()
        else:
            stop.set()  # one attempt only
        try:
            report = self.pipeline.process([message], stop)
        finally:
            timer.cancel()
        if not report.acked:
            raise StoreUnavailable(
                f"the store stayed unavailable for {self._store_wait_s:g} s; nothing stored"
            )
        (outcome,) = report.outcomes
        with self._lock:
            self._records_rejected.update(p.reason.value for p in outcome.problems)
            if outcome.rejected is not None:
                self._packs_rejected[outcome.rejected.reason.value] += 1
        return outcome

    def records_rejected(self) -> dict[str, int]:
        """Records of accepted packs rejected, by reason."""
        with self._lock:
            return dict(self._records_rejected)

    def packs_rejected(self) -> dict[str, int]:
        """Whole packs rejected, by reason."""
        with self._lock:
            return dict(self._packs_rejected)
