"""The telemetry store in one SQLite file, for running with no InfluxDB.

Why SQLite: it ships with Python (nothing to install), and in WAL mode other
processes (the API, a forecasting job, the CLI) read the file while ingest
writes to it; readers see the last committed batch and never block the
writer. DuckDB, the obvious columnar alternative, lets only one process open
a database for writing and then locks every other process out, readers
included.

The model is InfluxDB's, so the code above the port cannot tell the two apart:

* a point is identified by (measurement, tag set, time); writing it again
  overwrites the fields it carries and keeps the others (primary key + upsert),
  never a duplicate;
* a field keeps the type it was first written with (float, integer, boolean,
  string); a point with a conflicting type is rejected, as InfluxDB does;
* empty tag values are dropped (InfluxDB cannot store them either).

Tables: ``series`` (measurement + canonical tag set), ``series_tag`` (one row
per tag, for filtering and grouping in SQL), ``field_type`` and the narrow
``sample`` table (series, time, field, value). Aggregates are SQL ``GROUP BY``
queries over the time bucket and tag columns.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agrimatch.store.port import (
    AggregateRow,
    Aggregation,
    FieldValue,
    Point,
    Rejected,
    StoreError,
    StoreUnavailable,
    WriteResult,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    series_key TEXT NOT NULL,          -- JSON of the sorted (key, value) tag pairs
    UNIQUE (measurement, series_key)
);
CREATE TABLE IF NOT EXISTS series_tag (
    series_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (series_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS field_type (
    measurement TEXT NOT NULL,
    field TEXT NOT NULL,
    kind TEXT NOT NULL,                -- float | integer | boolean | string
    PRIMARY KEY (measurement, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sample (
    series_id INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    field TEXT NOT NULL,
    value,                             -- REAL, INTEGER (booleans as 0/1) or TEXT
    PRIMARY KEY (series_id, time_ms, field)
) WITHOUT ROWID;
"""

_UPSERT_SAMPLE = """
INSERT INTO sample (series_id, time_ms, field, value) VALUES (?, ?, ?, ?)
ON CONFLICT (series_id, time_ms, field) DO UPDATE SET value = excluded.value
"""

# InfluxDB keeps nanoseconds in an int64; stay inside what it could store.
_MAX_ABS_TIME_MS = (2**63 - 2) // 1_000_000
_INT64 = range(-(2**63), 2**63)
_NUMERIC = "CASE WHEN ft.kind IN ('float', 'integer') THEN v.value END"
_AGGREGATE_SQL = {
    Aggregation.MEAN: f"AVG({_NUMERIC})",
    Aggregation.SUM: f"SUM({_NUMERIC} * 1.0)",  # REAL: an INTEGER sum could overflow
    Aggregation.MIN: f"MIN({_NUMERIC})",
    Aggregation.MAX: f"MAX({_NUMERIC})",
    Aggregation.COUNT: "COUNT(v.value)",
    # SQLite takes bare columns from the row holding the MAX(): the latest value.
    Aggregation.LAST: "MAX(v.time_ms), v.value, ft.kind",
}


def field_kind(value: FieldValue) -> str:
    """InfluxDB's name for the type of a field value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


def invalid_reason(point: Point) -> str | None:
    """Why the store can never hold this point, or None."""
    if not point.measurement:
        return "measurement is empty"
    if not point.fields:
        return "point has no fields"
    if not isinstance(point.time_ms, int) or abs(point.time_ms) > _MAX_ABS_TIME_MS:
        return f"time {point.time_ms!r} is not an integer millisecond timestamp in range"
    for name, value in point.fields.items():
        if not name:
            return "a field name is empty"
        if not isinstance(value, bool | int | float | str):
            return f"field {name!r} has unsupported type {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"field {name!r} is {value}: non-finite floats cannot be stored"
        if isinstance(value, int) and value not in _INT64:
            return f"field {name!r} does not fit a 64-bit integer"
    return None


def series_key(tags: Mapping[str, str]) -> str:
    """Canonical identity of a tag set (empty keys and values dropped, as InfluxDB does)."""
    pairs = sorted((k, v) for k, v in tags.items() if k and v)
    return json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))


class EmbeddedStore:
    """:class:`~agrimatch.store.port.TelemetryStore` in a SQLite file (WAL mode).

    One writer thread and any number of reader threads per process: each thread
    gets its own connection, writes are serialized by a lock (and across
    processes by SQLite's own write lock).
    """

    def __init__(self, path: str | Path, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._series_ids: dict[tuple[str, str], int] = {}
        self._closed = False
        with self._errors():
            conn = self._conn()
            # WAL is a property of the file: set once, every later opener gets it.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.path)!r})"

    # -- writing -------------------------------------------------------------
    def write(self, points: Sequence[Point]) -> WriteResult:
        """Store ``points`` in one transaction, durably committed when this returns."""
        result = WriteResult()
        valid: list[Point] = []
        for point in points:
            reason = invalid_reason(point)
            if reason:
                result.rejected.append(Rejected(point, reason))
            else:
                valid.append(point)
        if not valid:
            return result
        with self._write_lock, self._errors():
            conn = self._conn()
            new_series: dict[tuple[str, str], int] = {}
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not half-way
            try:
                kinds: dict[tuple[str, str], str] = {}
                samples: list[tuple[int, int, str, FieldValue]] = []
                for point in valid:
                    conflict = self._check_kinds(conn, point, kinds)
                    if conflict:
                        result.rejected.append(Rejected(point, conflict))
                        continue
                    sid = self._series_id(conn, point, new_series)
                    samples.extend((sid, point.time_ms, f, v) for f, v in point.fields.items())
                    result.written += 1
                conn.executemany(_UPSERT_SAMPLE, samples)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            # Only committed series may be remembered: a rolled-back id may be reused.
            self._series_ids.update(new_series)
        return result

    @staticmethod
    def _check_kinds(
        conn: sqlite3.Connection, point: Point, kinds: dict[tuple[str, str], str]
    ) -> str | None:
        """A type conflict message, or None after registering the point's new fields."""
        new: list[tuple[str, str, str]] = []
        for name, value in point.fields.items():
            key = (point.measurement, name)
            kind = field_kind(value)
            known = kinds.get(key)
            if known is None:
                row = conn.execute(
                    "SELECT kind FROM field_type WHERE measurement = ? AND field = ?", key
                ).fetchone()
                known = row[0] if row else None
            if known is None:
                new.append((point.measurement, name, kind))
            elif known != kind:
                return (
                    f'field type conflict: input field "{name}" on measurement '
                    f'"{point.measurement}" is type {kind}, already exists as type {known}'
                )
            kinds[key] = known or kind
        conn.executemany("INSERT INTO field_type VALUES (?, ?, ?)", new)
        return None

    def _series_id(
        self, conn: sqlite3.Connection, point: Point, new_series: dict[tuple[str, str], int]
    ) -> int:
        key = (point.measurement, series_key(point.tags))
        sid = self._series_ids.get(key) or new_series.get(key)
        if sid is not None:
            return sid
        row = conn.execute(
            "SELECT id FROM series WHERE measurement = ? AND series_key = ?", key
        ).fetchone()
        if row is None:
            cursor = conn.execute("INSERT INTO series (measurement, series_key) VALUES (?, ?)", key)
            sid = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO series_tag VALUES (?, ?, ?)",
                [(sid, k, v) for k, v in json.loads(key[1])],
            )
        else:
            sid = int(row[0])
        new_series[key] = sid
        return sid

    # -- reading -------------------------------------------------------------
    def query_points(
        self,
        measurement: str,
        start_ms: int,
        end_ms: int,
        tags: Mapping[str, str] | None = None,
    ) -> list[Point]:
        """Raw points with ``start_ms <= time < end_ms`` matching ``tags``, oldest first."""
        tag_sql, tag_params = _tag_filter(tags)
        sql = f"""
            SELECT s.series_key, v.time_ms, v.field, v.value, ft.kind
            FROM series s
            JOIN sample v ON v.series_id = s.id
            JOIN field_type ft ON ft.measurement = s.measurement AND ft.field = v.field
            WHERE s.measurement = ? AND v.time_ms >= ? AND v.time_ms < ? {tag_sql}
            ORDER BY v.time_ms, s.series_key, v.field
        """
        with self._errors():
            rows = self._conn().execute(sql, [measurement, start_ms, end_ms, *tag_params])
            points: list[Point] = []
            current: tuple[str, int] | None = None
            fields: dict[str, FieldValue] = {}
            for key, time_ms, name, value, kind in rows:
                if (key, time_ms) != current:
                    current = (key, time_ms)
                    fields = {}
                    points.append(Point(measurement, dict(json.loads(key)), fields, time_ms))
                fields[name] = _decode(value, kind)
        return points

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
        """``fn`` of each field per bucket (from the epoch + ``offset_ms``) and group;
        empty buckets omitted."""
        if not fields:
            return []
        if every_ms is not None and every_ms <= 0:
            raise ValueError("every_ms must be positive")
        fn = Aggregation(fn)
        params: list[Any] = []  # in the order their placeholders appear in the SQL
        groups = [f"COALESCE(g{i}.value, '') AS g{i}" for i in range(len(group_by))]
        if every_ms is None:
            bucket = "? AS bucket"
            params.append(start_ms)
        else:
            # Floor to the bucket; SQLite's % truncates toward zero.
            bucket = "v.time_ms - (((v.time_ms - ?) % ?) + ?) % ? AS bucket"
            params += [offset_ms % every_ms] + [every_ms] * 3
        joins = [
            f"LEFT JOIN series_tag g{i} ON g{i}.series_id = s.id AND g{i}.key = ?"
            for i in range(len(group_by))
        ]
        params += group_by
        tag_sql, tag_params = _tag_filter(tags)
        params += [measurement, start_ms, end_ms, *fields, *tag_params]
        group_cols = [f"g{i}" for i in range(len(group_by))] + ["bucket"]
        sql = f"""
            SELECT {", ".join([*groups, bucket])}, v.field, {_AGGREGATE_SQL[fn]}
            FROM series s
            JOIN sample v ON v.series_id = s.id
            JOIN field_type ft ON ft.measurement = s.measurement AND ft.field = v.field
            {" ".join(joins)}
            WHERE s.measurement = ? AND v.time_ms >= ? AND v.time_ms < ?
              AND v.field IN ({", ".join("?" * len(fields))}) {tag_sql}
            GROUP BY {", ".join([*group_cols, "v.field"])}
            ORDER BY {", ".join(group_cols)}
        """
        n = len(group_by)
        buckets: dict[tuple[tuple[str, ...], int], dict[str, float | None]] = {}
        with self._errors():
            for row in self._conn().execute(sql, params):
                group, bucket_ms, name = tuple(row[:n]), int(row[n]), row[n + 1]
                # LAST reads (max time, value, kind); the others their one aggregate.
                value = _decode(row[n + 3], row[n + 4]) if fn is Aggregation.LAST else row[n + 2]
                values = buckets.setdefault((group, bucket_ms), dict.fromkeys(fields))
                values[name] = _as_float(value)
        return [
            AggregateRow(group=dict(zip(group_by, group, strict=True)), bucket_ms=b, values=v)
            for (group, b), v in buckets.items()
        ]

    # -- plumbing ------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must not be shared by threads)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_s,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # only so close() may close it from another thread
        )
        # In WAL mode, NORMAL makes a commit durable against a process crash
        # (the WAL is written before COMMIT returns); only an OS crash or power
        # loss could undo the last commits, because the WAL is fsynced at
        # checkpoints rather than at every commit.
        conn.execute("PRAGMA synchronous=NORMAL")
        self._local.conn = conn
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate SQLite errors into the port's: transient ones become StoreUnavailable."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if any(s in message for s in ("locked", "busy", "disk is full", "disk I/O")):
                raise StoreUnavailable(f"{self!r}: {message}") from exc
            raise StoreError(f"{self!r}: {message}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{self!r}: {exc}") from exc

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tag_filter(tags: Mapping[str, str] | None) -> tuple[str, list[str]]:
    """SQL conditions on series ``s`` for tag equality (an empty value: tag absent)."""
    sql: list[str] = []
    params: list[str] = []
    for key, value in (tags or {}).items():
        if value:
            sql.append(
                "AND EXISTS (SELECT 1 FROM series_tag t"
                " WHERE t.series_id = s.id AND t.key = ? AND t.value = ?)"
            )
            params += [key, value]
        else:
            sql.append(
                "AND NOT EXISTS (SELECT 1 FROM series_tag t WHERE t.series_id = s.id AND t.key = ?)"
            )
            params.append(key)
    return " ".join(sql), params


def _decode(value: Any, kind: str) -> FieldValue:
    if kind == "boolean":
        return bool(value)
    if kind == "float":
        return float(value)
    return value


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool | int | float):
        return float(value)
    return None  # aggregates of string fields (last) have no number
