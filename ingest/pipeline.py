"""The transport-independent ingest pipeline.

decode → validate → points → write (retrying until stored) → dead-letter the
bad → acknowledge, in arrival order. MQTT and HTTP telemetry both go through
:meth:`TelemetryPipeline.process`; a message's ``ack`` runs only after every
good point of it is durably stored and every dead letter of it is accepted.

A message that makes the decoding itself fail (a bug of ours, not the
message's fault) is dead-lettered as ``internal_error`` rather than raised:
raised, it would stop the writer on every redelivery, a poison message. A
store that refuses for good (:class:`~agrimatch.store.StoreError`, e.g. bad
credentials) is raised to the caller, with nothing acknowledged: retrying
cannot fix it, and the transport must stop loudly instead of idling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential_jitter,
)

from agrimatch.clock import Clock
from agrimatch.contract.reasons import Reason
from agrimatch.contract.telemetry import (
    MessageRejected,
    RecordProblem,
    TimeLimits,
    decode_telemetry,
)
from agrimatch.contract.topics import TopicError, TopicKind, parse_topic
from agrimatch.store import Point, StoreUnavailable, TelemetryStore, WriteResult
from agrimatch.store.measurements import readings_to_points
from ingest.deadletter import DeadLetter, DeadLetterSink
from ingest.metrics import IngestMetrics
from ingest.places import RegisteredPlaces

log = logging.getLogger(__name__)


@dataclass(slots=True)
class InboundMessage:
    """A telemetry message as any transport hands it over."""

    topic: str
    payload: bytes
    received_at: float
    ack: Callable[[], None] | None = None


@dataclass(slots=True)
class MessageOutcome:
    """What became of one message."""

    readings_stored: int = 0
    problems: list[RecordProblem] = field(default_factory=list)
    rejected: DeadLetter | None = None  # set when the whole message was refused

    @property
    def accepted(self) -> bool:
        return self.rejected is None


@dataclass(slots=True)
class BatchReport:
    outcomes: list[MessageOutcome]
    acked: bool  # False when stopped before the batch was stored; nothing was acked


@dataclass(slots=True)
class RetryPolicy:
    initial_s: float = 0.2
    max_s: float = 10.0


def _interruptible_sleep(stop: threading.Event, seconds: float) -> None:
    # Wakes at once on shutdown instead of sleeping out the backoff.
    stop.wait(seconds)


class TelemetryPipeline:
    """Turns batches of inbound messages into stored points and dead letters."""

    def __init__(
        self,
        store: TelemetryStore,
        dead_letters: DeadLetterSink,
        clock: Clock,
        *,
        limits: TimeLimits | None = None,
        metrics: IngestMetrics | None = None,
        retry: RetryPolicy | None = None,
        places: RegisteredPlaces | None = None,
    ) -> None:
        self._store = store
        self._places = places  # None: no registry, every device's topic is taken as is
        self._dead_letters = dead_letters
        self._clock = clock
        self._limits = limits or TimeLimits()
        self.metrics = metrics or IngestMetrics()
        self._retry = retry or RetryPolicy()

    def process(
        self, messages: Sequence[InboundMessage], stop: threading.Event | None = None
    ) -> BatchReport:
        """Store, dead-letter and acknowledge one batch.

        Blocks, retrying with backoff, while the store is unavailable; returns
        with ``acked=False`` (nothing acknowledged, nothing lost: the transport
        redelivers) only if ``stop`` is set first. Raises ``StoreError`` when
        the store refuses for good (nothing of the batch is acknowledged).
        """
        stop = stop or threading.Event()
        started = time.perf_counter()
        now = self._clock.now()
        outcomes: list[MessageOutcome] = []
        points: list[Point] = []
        owners: list[int] = []  # message index of each point
        letters: list[DeadLetter] = []
        for index, message in enumerate(messages):
            outcome, message_points, letter = self._decode(message, now)
            outcomes.append(outcome)
            points.extend(message_points)
            owners.extend([index] * len(message_points))
            if letter is not None:
                letters.append(letter)

        result = self._write(points, stop)
        if result is None:
            return BatchReport(outcomes, acked=False)
        letters.extend(self._store_rejections(result, points, owners, messages, outcomes))

        if letters and not self._dead_letters.send(letters, stop):
            return BatchReport(outcomes, acked=False)
        self.metrics.dead_lettered(letter.reason.value for letter in letters)

        self._count(messages, outcomes, points, result, letters)
        for message in messages:
            if message.ack is not None:
                message.ack()
        self.metrics.acked(len(messages))
        self.metrics.observe_batch((time.perf_counter() - started) * 1000)
        return BatchReport(outcomes, acked=True)

    def _decode(
        self, message: InboundMessage, now: float
    ) -> tuple[MessageOutcome, list[Point], DeadLetter | None]:
        try:
            address, kind = parse_topic(message.topic)
            if kind is not TopicKind.TELEMETRY:
                raise TopicError(f"not a telemetry topic: {message.topic!r}")
            # Before decoding: a device in the wrong place costs a cache hit, not a parse.
            wrong = self._places.problem(address) if self._places is not None else None
            if wrong is not None:
                refused = self._letter(message, wrong.reason, wrong.detail)
                return MessageOutcome(rejected=refused), [], refused
            decoded = decode_telemetry(message.payload, address.device, now, self._limits)
        except TopicError as exc:
            refused = self._letter(message, Reason.BAD_TOPIC, str(exc))
            return MessageOutcome(rejected=refused), [], refused
        except MessageRejected as exc:
            refused = self._letter(message, exc.reason, exc.detail)
            return MessageOutcome(rejected=refused), [], refused
        except Exception as exc:  # a bug of ours: dead-letter it, the writer goes on
            detail = f"ingest failed on this message: {type(exc).__name__}: {exc}"
            refused = self._letter(message, Reason.INTERNAL_ERROR, detail)
            log.error("%s (dead-lettered as internal_error)", refused.detail, exc_info=True)
            return MessageOutcome(rejected=refused), [], refused

        outcome = MessageOutcome(readings_stored=len(decoded.readings), problems=decoded.problems)
        letter: DeadLetter | None = None
        if decoded.problems:
            # One dead letter per message: the good records are kept, the bad ones
            # travel with the original payload so nothing is silently lost.
            first = decoded.problems[0]
            letter = self._letter(
                message,
                first.reason,
                f"{len(decoded.problems)} of the pack's records rejected; first: {first.detail}",
                # A generator: the letter keeps the first few and counts the rest.
                records=(
                    {"index": p.index, "reason": p.reason.value, "detail": p.detail}
                    for p in decoded.problems
                ),
            )
        try:
            points = readings_to_points(address, decoded.readings)
        except Exception as exc:  # a bug of ours, as above
            detail = f"ingest failed on this message: {type(exc).__name__}: {exc}"
            refused = self._letter(message, Reason.INTERNAL_ERROR, detail)
            log.error("%s (dead-lettered as internal_error)", refused.detail, exc_info=True)
            return MessageOutcome(rejected=refused), [], refused
        return outcome, points, letter

    def _write(self, points: list[Point], stop: threading.Event) -> WriteResult | None:
        if not points:
            return WriteResult()
        retrying = Retrying(
            retry=retry_if_exception_type(StoreUnavailable),
            wait=wait_exponential_jitter(
                multiplier=self._retry.initial_s,
                max=self._retry.max_s,
                jitter=self._retry.initial_s,
            ),
            stop=stop_when_event_set(stop),
            sleep=lambda seconds: _interruptible_sleep(stop, seconds),
            before_sleep=self._on_retry,
            reraise=True,
        )
        try:
            return retrying(self._store.write, points)
        except StoreUnavailable:
            return None  # stopped while the store was down: nothing acked, nothing lost

    def _on_retry(self, state: object) -> None:
        self.metrics.add(store_retries=1)
        outcome = getattr(state, "outcome", None)
        error = outcome.exception() if outcome is not None else None
        log.warning("store unavailable, retrying batch: %s", error)

    def _store_rejections(
        self,
        result: WriteResult,
        points: list[Point],
        owners: list[int],
        messages: Sequence[InboundMessage],
        outcomes: list[MessageOutcome],
    ) -> list[DeadLetter]:
        if not result.rejected:
            return []
        position = {id(p): i for i, p in enumerate(points)}
        by_message: dict[int, list[str]] = {}
        for rejected in result.rejected:
            owner = owners[position[id(rejected.point)]]
            by_message.setdefault(owner, []).append(rejected.reason)
            outcomes[owner].readings_stored -= len(rejected.point.fields)
        return [
            self._letter(
                messages[index],
                Reason.STORE_REJECTED,
                f"the store refused {len(reasons)} point(s): {reasons[0]}",
                records=[{"reason": Reason.STORE_REJECTED.value, "detail": r} for r in reasons],
            )
            for index, reasons in sorted(by_message.items())
        ]

    def _letter(
        self,
        message: InboundMessage,
        reason: Reason,
        detail: str,
        records: Iterable[Mapping[str, object]] = (),
    ) -> DeadLetter:
        return DeadLetter.of(
            reason=reason,
            detail=detail,
            topic=message.topic,
            payload=message.payload,
            received_at=message.received_at,
            records=records,
        )

    def _count(
        self,
        messages: Sequence[InboundMessage],
        outcomes: list[MessageOutcome],
        points: list[Point],
        result: WriteResult,
        letters: list[DeadLetter],
    ) -> None:
        # messages_received is counted by the transport, on arrival.
        self.metrics.add(
            messages_dead_lettered=sum(1 for o in outcomes if not o.accepted),
            records_rejected=sum(len(o.problems) for o in outcomes),
            readings_stored=sum(o.readings_stored for o in outcomes),
        )
        if result.written:
            self.metrics.stored(result.written)
        for letter in letters:
            log.info("dead-lettered %s: %s (%s)", letter.topic, letter.reason.value, letter.detail)
