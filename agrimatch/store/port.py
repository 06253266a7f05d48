"""The storage port: what every telemetry store adapter offers.

The model follows InfluxDB's: a point is a measurement, a set of tags (the
series) and fields at one timestamp in milliseconds. The same point (series +
timestamp) written twice is stored once, with field values merged, which is
what makes at-least-once delivery safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

FieldValue = float | int | bool | str


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ms: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A point the store refused for good, and why."""

    point: Point
    reason: str


@dataclass(slots=True)
class WriteResult:
    written: int = 0
    rejected: list[Rejected] = field(default_factory=list)


class StoreError(Exception):
    """A store failure that retrying will not fix (bad query, bad credentials)."""


class StoreUnavailable(Exception):
    """The store cannot be reached or failed transiently; retry later, drop nothing."""


class Aggregation(StrEnum):
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class AggregateRow:
    """One time bucket of one group: ``values`` maps field name to the aggregate."""

    group: Mapping[str, str]
    bucket_ms: int
    values: Mapping[str, float | None]


class TelemetryStore(Protocol):
    """Write points and read them back, raw or aggregated."""

    def write(self, points: Sequence[Point]) -> WriteResult:
        """Store ``points``; refused points come back in ``rejected``.

        Raises :class:`StoreUnavailable` when nothing could be stored for a
        transient reason (the caller retries); never stores part of a batch
        and then raises.
        """
        ...

    def query_points(
        self,
        measurement: str,
        start_ms: int,
        end_ms: int,
        tags: Mapping[str, str] | None = None,
    ) -> list[Point]:
        """Raw points with ``start_ms <= time < end_ms`` matching ``tags``, oldest first."""
        ...

    def aggregate(
        self,
        measurement: str,
        fields: Sequence[str],
        fn: Aggregation,
        start_ms: int,
        end_ms: int,
        every_ms: int | None = None,
        group_by: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        offset_ms: int = 0,
    ) -> list[AggregateRow]:
        """``fn`` of each field per time bucket (``every_ms``; None = whole range) and group.

        Buckets start at ``offset_ms + k * every_ms`` from the epoch (so days can
        be local days) and are keyed by their start; empty buckets are omitted.
        Rows are ordered by group, then bucket.
        """
        ...

    def close(self) -> None: ...
