"""The telemetry store on InfluxDB's v1-compatible HTTP API (line protocol, InfluxQL).

Every InfluxDB generation serves this API (1.x natively, 2.x through DBRP
mappings with token auth, 3.x natively), so one adapter covers them all.

Failure handling is what the ingest promise rests on:

* the server cannot be reached, times out or answers 5xx: :class:`StoreUnavailable`;
  the caller keeps the batch and retries with backoff, nothing is dropped;
* 401/403: :class:`StoreError`; bad credentials do not heal by retrying;
* 400/422 on a write (type conflict, unparsable point, beyond retention): the
  batch is bisected until the bad points are isolated. Those come back as
  :class:`Rejected` with InfluxDB's own error text; every other point is
  written. InfluxDB 1.x already stores the good points of a batch it answers
  "partial write" to, so bisection re-writes some of them: harmless, since a
  point (series + time) written twice is stored once.

A write that raises :class:`StoreUnavailable` half-way through a bisection
may have stored part of the batch; retrying the whole batch is still safe for
the same reason.
"""

from __future__ import annotations

import gzip
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from influxdb_client import Point as LinePoint
from influxdb_client import WritePrecision

from agrimatch.store.port import (
    AggregateRow,
    Aggregation,
    Point,
    Rejected,
    StoreError,
    StoreUnavailable,
    WriteResult,
)

if TYPE_CHECKING:
    from agrimatch.settings import Settings

log = logging.getLogger(__name__)

# Line protocol compresses 5-10x even at level 1; higher levels cost CPU on the
# ingest hot path for little gain.
GZIP_LEVEL = 1
# A 413 means the body is over the server's max-body-size: split, do not reject.
_SPLIT_STATUSES = frozenset({400, 413, 422})
_REASON_MAX_CHARS = 1000


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes, with backslash, quote and newline escaped."""
    return '"' + _escape_influxql(name, '"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes, with backslash, quote and newline escaped."""
    return "'" + _escape_influxql(value, "'") + "'"


def _escape_influxql(text: str, quote: str) -> str:
    # The InfluxQL scanner ends a quoted token at a raw newline and knows the
    # escapes \\ \n and \<quote>.
    return text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def to_line(point: Point) -> str:
    """The point as one line of line protocol (ms precision); raise ValueError if it has none."""
    problem = _invalid_reason(point)
    if problem:
        raise ValueError(problem)
    line = LinePoint(point.measurement)
    for key, value in point.tags.items():
        line.tag(key, value)  # empty keys and values are dropped, as InfluxDB would
    for name, field_value in point.fields.items():
        line.field(name, field_value)
    line.time(point.time_ms, WritePrecision.MS)
    return str(line.to_line_protocol())


class LineBuilder:
    """Line protocol for the ingest hot path, identical to :func:`to_line`.

    influxdb-client's ``Point`` escapes the measurement and every tag on every
    call; telemetry repeats the same few thousand series, so the escaped series
    prefix and field keys are made once (by ``Point`` itself) and cached.
    Numbers are formatted as ``Point`` formats them; anything else goes through
    :func:`to_line`. ``bench/line_protocol.py`` measures the difference.
    """

    def __init__(self, max_cached: int = 200_000) -> None:
        self._max_cached = max_cached
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._keys: dict[str, str] = {}

    def line(self, point: Point) -> str:
        """The point as one line (ms precision); raise ValueError if it has none."""
        parts = []
        for name in sorted(point.fields):
            value = point.fields[name]
            kind = type(value)
            if kind is float:
                if not math.isfinite(value):  # type: ignore[arg-type]
                    return to_line(point)  # raises with the reason
                text = str(value)
                if text.endswith(".0"):
                    text = text[:-2]
            elif kind is int:
                text = f"{value}i"
            elif kind is bool:
                text = "true" if value else "false"
            else:
                return to_line(point)
            key = self._keys.get(name)
            if key is None:
                key = self._remember(self._keys, name, _field_key(name))
            parts.append(f"{key}={text}")
        if not parts:
            return to_line(point)
        series = (point.measurement, tuple(point.tags.items()))
        prefix = self._prefixes.get(series)
        if prefix is None:
            prefix = self._remember(self._prefixes, series, _series_prefix(point))
        return f"{prefix} {','.join(parts)} {point.time_ms}"

    def _remember(self, cache: dict[Any, str], key: Any, value: str) -> str:
        if len(cache) >= self._max_cached:
            cache.clear()  # a bound, not an eviction policy: series sets are small in practice
        cache[key] = value
        return value


def _series_prefix(point: Point) -> str:
    # Let Point escape and order the series, with a placeholder field cut off after.
    line = LinePoint(point.measurement)
    for key, value in point.tags.items():
        line.tag(key, value)
    line.field("x", 1.0)
    return str(line.to_line_protocol())[: -len(" x=1")]


def _field_key(name: str) -> str:
    line = LinePoint("m").field(name, 1.0)
    return str(line.to_line_protocol())[len("m ") : -len("=1")]


def _invalid_reason(point: Point) -> str | None:
    """Why InfluxDB could never store this point, for what line protocol cannot express."""
    if not point.fields:
        return "point has no fields"
    for name, value in point.fields.items():
        if isinstance(value, float):
            if not math.isfinite(value):
                return f"field {name!r} is {value}: line protocol has no non-finite floats"
        elif not isinstance(value, bool | int | str):
            return f"field {name!r} has unsupported type {type(value).__name__}"
    return None


class InfluxStore:
    """:class:`~agrimatch.store.port.TelemetryStore` on InfluxDB's v1-compatible HTTP API."""

    def __init__(
        self,
        url: str,
        database: str,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        create_database: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network (tests use ``httpx.MockTransport``)."""
        self.url = url.rstrip("/")
        self.database = database
        self.timeout_s = timeout_s
        self.create_database = create_database
        headers = {"User-Agent": "agrimatch"}
        auth: httpx.Auth | None = None
        if token:
            headers["Authorization"] = f"Token {token}"
        elif username:
            # Basic auth rather than the u/p query parameters: URLs end up in
            # logs (httpx logs every request URL at INFO), headers do not.
            auth = httpx.BasicAuth(username, password or "")
        self._client = httpx.Client(
            base_url=self.url, headers=headers, auth=auth, timeout=timeout_s, transport=transport
        )
        self._database_ready = False
        self._lines = LineBuilder()

    @classmethod
    def from_settings(cls, settings: Settings) -> InfluxStore:
        """The store the settings describe (``settings.influx_url`` must be set)."""
        if not settings.influx_url:
            raise ValueError("settings.influx_url is not set")
        return cls(
            url=settings.influx_url,
            database=settings.influx_db,
            token=settings.influx_token.get_secret_value() if settings.influx_token else None,
            username=settings.influx_username,
            password=(
                settings.influx_password.get_secret_value() if settings.influx_password else None
            ),
            timeout_s=settings.influx_timeout_s,
        )

    def __repr__(self) -> str:
        # No credentials, and none that may hide in the URL either.
        parts = urlsplit(self.url)
        return f"InfluxStore({parts.scheme}://{parts.hostname}:{parts.port}, db={self.database!r})"

    # -- writing -------------------------------------------------------------
    def write(self, points: Sequence[Point]) -> WriteResult:
        """Write ``points`` in one request; isolate and return the ones InfluxDB refuses."""
        result = WriteResult()
        accepted: list[Point] = []
        lines: list[str] = []
        for point in points:
            try:
                lines.append(self._lines.line(point))
            except ValueError as exc:
                result.rejected.append(Rejected(point, str(exc)))
                continue
            accepted.append(point)
        if accepted:
            self._ensure_database()
            result.written = self._write_lines(accepted, lines, result.rejected)
        return result

    def _write_lines(self, points: list[Point], lines: list[str], rejected: list[Rejected]) -> int:
        """Write, bisecting on a point-level refusal; return how many points were stored."""
        status, reason = self._post_write(lines)
        if status < 300:
            return len(points)
        if len(points) == 1:
            rejected.append(Rejected(points[0], reason))
            return 0
        mid = len(points) // 2
        return self._write_lines(points[:mid], lines[:mid], rejected) + self._write_lines(
            points[mid:], lines[mid:], rejected
        )

    def _post_write(self, lines: list[str]) -> tuple[int, str]:
        """POST lines to /write: (status, reason) for success or a point-level refusal.

        Raises for everything that is not about the points themselves.
        """
        body = gzip.compress("\n".join(lines).encode(), compresslevel=GZIP_LEVEL)
        for attempt in (1, 2):
            response = self._request(
                "/write",
                params={"db": self.database, "precision": "ms"},
                content=body,
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
            )
            status = response.status_code
            if status < 300:
                return status, ""
            if status in _SPLIT_STATUSES:
                return status, _error_text(response)
            if status == 404 and attempt == 1 and self.create_database:
                # The database went away (dropped by hand): create it again, once.
                self._database_ready = False
                self._ensure_database()
                continue
            self._raise_for_status(response, "write")
        raise AssertionError("unreachable")

    # -- reading -------------------------------------------------------------
    def query_points(
        self,
        measurement: str,
        start_ms: int,
        end_ms: int,
        tags: Mapping[str, str] | None = None,
    ) -> list[Point]:
        """Raw points with ``start_ms <= time < end_ms`` matching ``tags``, oldest first."""
        # GROUP BY * returns tags per series instead of as columns.
        (result,) = self._query(
            f"SELECT * FROM {quote_ident(measurement)}"
            f" WHERE {_where(start_ms, end_ms, tags)} GROUP BY *",
            statements=1,
        )
        rows: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        for series in result.get("series", ()):
            series_tags = {k: v for k, v in (series.get("tags") or {}).items() if v != ""}
            columns: list[str] = series["columns"]
            for row in series["values"]:
                fields = {
                    name: value
                    for name, value in zip(columns[1:], row[1:], strict=True)
                    if value is not None
                }
                if fields:
                    rows.append((int(row[0]), series_tags, fields))
        # InfluxDB's JSON writes the float 21.0 as 21. Only when such a value
        # turns up, a second request asks which of those fields are floats.
        looks_int = {n for _, _, f in rows for n, v in f.items() if type(v) is int}
        floats = self._float_fields(measurement) & looks_int if looks_int else set()
        points = [
            Point(
                measurement,
                series_tags,
                {n: float(v) if n in floats else v for n, v in fields.items()},
                time_ms,
            )
            for time_ms, series_tags, fields in rows
        ]
        points.sort(key=lambda p: (p.time_ms, sorted(p.tags.items())))
        return points

    def _float_fields(self, measurement: str) -> set[str]:
        """Fields that are floats in every shard (a field's type may differ between shards)."""
        (result,) = self._query(f"SHOW FIELD KEYS FROM {quote_ident(measurement)}", statements=1)
        types: dict[str, set[str]] = {}
        for series in result.get("series", ()):
            for name, field_type in series["values"]:
                types.setdefault(name, set()).add(field_type)
        return {name for name, kinds in types.items() if kinds == {"float"}}

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
        selected = ", ".join(f"{fn.value}({quote_ident(f)}) AS {quote_ident(f)}" for f in fields)
        grouping = []
        if every_ms is not None:
            grouping.append(f"time({every_ms}ms, {offset_ms % every_ms}ms)")
        grouping += [quote_ident(tag) for tag in group_by]
        query = (
            f"SELECT {selected} FROM {quote_ident(measurement)}"
            f" WHERE {_where(start_ms, end_ms, tags)}"
        )
        if grouping:
            query += " GROUP BY " + ", ".join(grouping)
        if every_ms is not None:
            query += " fill(none)"
        (result,) = self._query(query, statements=1)
        out: list[AggregateRow] = []
        for series in result.get("series", ()):
            series_tags = series.get("tags") or {}
            group = {tag: series_tags.get(tag, "") for tag in group_by}
            columns: list[str] = series["columns"]
            for row in series["values"]:
                values = dict(zip(columns[1:], row[1:], strict=True))
                out.append(
                    AggregateRow(
                        group=group,
                        # Without time buckets, a lone selector (last, min, max)
                        # reports the selected point's time: the bucket is the range.
                        bucket_ms=int(row[0]) if every_ms is not None else start_ms,
                        values={f: _as_float(values.get(f)) for f in fields},
                    )
                )
        out.sort(key=lambda r: (tuple(r.group[t] for t in group_by), r.bucket_ms))
        return out

    def _query(self, query: str, statements: int) -> list[dict[str, Any]]:
        """Run ``statements`` InfluxQL statements; one result dict per statement."""
        self._ensure_database()
        response = self._request(
            "/query", params={"db": self.database, "epoch": "ms"}, data={"q": query}
        )
        self._raise_for_status(response, "query")
        results: list[dict[str, Any]] = _json(response).get("results") or []
        errors = [str(r["error"]) for r in results if r.get("error") is not None]
        if any(e.startswith("database not found") for e in errors):
            # Nothing was ever written here (and we may not create it). The
            # statements after the failing one only say "not executed".
            return [{} for _ in range(statements)]
        if errors:
            raise StoreError(f"InfluxDB query failed: {'; '.join(errors)}")
        if len(results) != statements:
            raise StoreError(f"InfluxDB answered {len(results)} results to {statements} statements")
        return results

    # -- plumbing ------------------------------------------------------------
    def _ensure_database(self) -> None:
        """CREATE DATABASE once, when allowed; denial is fine (2.x maps buckets via DBRP)."""
        if self._database_ready or not self.create_database:
            return
        statement = f"CREATE DATABASE {quote_ident(self.database)}"
        response = self._request("/query", data={"q": statement})
        if response.status_code >= 500:
            self._raise_for_status(response, "create database")
        if response.status_code >= 300:
            log.info(
                "InfluxDB refused CREATE DATABASE %s (HTTP %d): assuming it exists",
                self.database,
                response.status_code,
            )
        self._database_ready = True

    def _request(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.post(path, **kwargs)
        except httpx.TransportError as exc:
            # Connection refused, DNS, timeouts, resets: the server may come back.
            raise StoreUnavailable(f"InfluxDB at {self!r} unreachable: {exc!r}") from None
        except httpx.HTTPError as exc:
            raise StoreError(f"InfluxDB request failed: {exc!r}") from None

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 300:
            return
        text = _error_text(response)
        if status >= 500 or status == 429:
            raise StoreUnavailable(f"InfluxDB {what} failed with HTTP {status}: {text}")
        if status in (401, 403):
            raise StoreError(f"InfluxDB {what} not authorized (HTTP {status}): {text}")
        raise StoreError(f"InfluxDB {what} failed with HTTP {status}: {text}")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> InfluxStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where(start_ms: int, end_ms: int, tags: Mapping[str, str] | None) -> str:
    clauses = [f"time >= {int(start_ms)}ms", f"time < {int(end_ms)}ms"]
    # ::tag keeps a tag apart from a field of the same name.
    clauses += [f"{quote_ident(k)}::tag = {quote_string(v)}" for k, v in (tags or {}).items()]
    return " AND ".join(clauses)


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool | int | float):
        return float(value)
    return None  # aggregates of string fields (last) have no number


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise StoreError(f"InfluxDB answered with non-JSON: {response.text[:200]!r}") from None
    if not isinstance(body, dict):
        raise StoreError(f"InfluxDB answered with unexpected JSON: {body!r:.200}")
    return body


def _error_text(response: httpx.Response) -> str:
    """InfluxDB's error message: 1.x says {"error": ...}, 2.x {"message": ...}."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = body.get("error") or body.get("message")
        if text:
            return str(text)[:_REASON_MAX_CHARS]
    return (response.text.strip() or response.reason_phrase)[:_REASON_MAX_CHARS]
