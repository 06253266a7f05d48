"""What only the InfluxDB adapter has to get right: the server, the wire, the database."""

from __future__ import annotations

import base64
import gzip
import secrets
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from agrimatch.store import Point, StoreError, StoreUnavailable
from agrimatch.store.influx import InfluxStore, quote_ident, quote_string
from tests.services import InfluxServer

T0 = 1_700_000_400_000
M = "telemetry"


def tele(time_ms: int, **fields) -> Point:
    return Point(M, {"farm": "f1", "device": "d1"}, fields, time_ms)


def databases(url: str) -> set[str]:
    body = httpx.post(f"{url}/query", data={"q": "SHOW DATABASES"}).json()
    series = body["results"][0].get("series", [])
    return {row[0] for s in series for row in s.get("values", [])}


def test_a_clean_batch_is_one_gzipped_request(influx_store):
    influx_store.write([tele(T0, x=0.0)])  # the database exists from now on
    sent: list[httpx.Request] = []
    influx_store._client.event_hooks["request"].append(sent.append)

    influx_store.write([tele(T0 + i, x=float(i)) for i in range(500)])

    assert [r.url.path for r in sent] == ["/write"]
    assert sent[0].headers["Content-Encoding"] == "gzip"


def test_a_point_influxdb_cannot_parse_is_rejected_with_its_reason_and_the_rest_stored(
    influx_store,
):
    # 9e15 ms is past what InfluxDB's int64 nanoseconds can hold.
    bad = tele(9_000_000_000_000_000, x=1.0)
    good = [tele(T0 + i, x=float(i)) for i in range(7)]

    result = influx_store.write([*good[:3], bad, *good[3:]])

    assert [r.point for r in result.rejected] == [bad]
    assert "time outside range" in result.rejected[0].reason
    assert result.written == 7
    assert influx_store.query_points(M, T0, T0 + 1000) == good


def test_a_stopped_server_raises_store_unavailable_and_writes_resume_after_restart(
    influx_server, influx_store
):
    before = tele(T0, x=1.0)
    during = tele(T0 + 1, x=2.0)
    influx_store.write([before])

    influx_server.stop()
    try:
        with pytest.raises(StoreUnavailable):
            influx_store.write([during])
        with pytest.raises(StoreUnavailable):
            influx_store.query_points(M, T0, T0 + 10)
    finally:
        influx_server.start()

    assert influx_store.write([during]).written == 1
    assert influx_store.query_points(M, T0, T0 + 10) == [before, during]


def test_the_database_is_created_on_first_use(influx_server):
    database = f"auto_{uuid.uuid4().hex[:8]}"
    with InfluxStore(influx_server.url, database) as store:
        assert store.write([tele(T0, x=1.0)]).written == 1
        assert database in databases(influx_server.url)
        httpx.post(f"{influx_server.url}/query", data={"q": f"DROP DATABASE {database}"})


def test_without_permission_to_create_a_missing_database_a_write_is_a_store_error(
    influx_server,
):
    database = f"absent_{uuid.uuid4().hex[:8]}"
    with InfluxStore(influx_server.url, database, create_database=False) as store:
        assert store.query_points(M, T0, T0 + 10) == []
        with pytest.raises(StoreError, match="database not found"):
            store.write([tele(T0, x=1.0)])
    assert database not in databases(influx_server.url)


def test_a_database_dropped_under_a_running_store_is_created_again(influx_server, influx_store):
    influx_store.write([tele(T0, x=1.0)])
    httpx.post(
        f"{influx_server.url}/query",
        data={"q": f"DROP DATABASE {quote_ident(influx_store.database)}"},
    )

    assert influx_store.write([tele(T0 + 1, x=2.0)]).written == 1
    assert influx_store.query_points(M, T0, T0 + 10) == [tele(T0 + 1, x=2.0)]


def test_influxql_identifiers_and_strings_escape_quotes_backslashes_and_newlines():
    assert quote_ident('we"ird\\name') == '"we\\"ird\\\\name"'
    assert quote_string("o'brien\\farm\nnorth") == "'o\\'brien\\\\farm\\nnorth'"
    assert quote_string('say "hi"') == "'say \"hi\"'"


# -- credentials, against a real server with authentication on -----------------------


@pytest.fixture(scope="module")
def secured_influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A second influxd with auth on and one admin: ``(url, admin password)``."""
    server = InfluxServer(tmp_path_factory.mktemp("influxdb-auth"), auth=True)
    server.start()
    try:
        password = secrets.token_urlsafe(16)
        admin = f"CREATE USER admin WITH PASSWORD {quote_string(password)} WITH ALL PRIVILEGES"
        created = httpx.post(f"{server.url}/query", data={"q": admin})
        assert created.status_code == 200, created.text
        yield server.url, password
    finally:
        server.stop()


def test_the_right_user_and_password_create_the_database_write_and_read(secured_influx):
    url, password = secured_influx
    with InfluxStore(url, f"db_{uuid.uuid4().hex[:8]}", username="admin", password=password) as s:
        assert s.write([tele(T0, x=1.5)]).written == 1
        assert s.query_points(M, T0, T0 + 1) == [tele(T0, x=1.5)]


@pytest.mark.parametrize("credentials", [{"username": "admin"}, {}], ids=["wrong", "none"])
def test_a_real_server_refuses_bad_credentials_without_echoing_them(secured_influx, credentials):
    url, password = secured_influx
    database = f"db_{uuid.uuid4().hex[:8]}"
    if credentials:
        credentials = {**credentials, "password": password + "x"}
    with InfluxStore(url, database, **credentials) as store:
        with pytest.raises(StoreError, match="not authorized \\(HTTP 401\\)") as refused:
            store.write([tele(T0, x=1.0)])
        assert not isinstance(refused.value, StoreUnavailable)  # not worth retrying
        assert password not in str(refused.value) and password not in repr(store)
    with InfluxStore(url, database, username="admin", password=password) as admin:
        assert admin.query_points(M, T0, T0 + 1) == []  # nothing was written


def test_a_user_who_may_only_read_is_refused_writes_and_still_reads(secured_influx):
    url, password = secured_influx
    database = f"db_{uuid.uuid4().hex[:8]}"
    reader, reader_password = f"reader_{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12)
    with InfluxStore(url, database, username="admin", password=password) as admin:
        admin.write([tele(T0, x=1.0)])
    for statement in (
        f"CREATE USER {reader} WITH PASSWORD {quote_string(reader_password)}",
        f"GRANT READ ON {quote_ident(database)} TO {reader}",
    ):
        granted = httpx.post(f"{url}/query", data={"q": statement}, auth=("admin", password))
        assert granted.status_code == 200 and "error" not in granted.text, granted.text

    # Its CREATE DATABASE is refused too, which alone is not fatal (2.x has DBRP mappings).
    with InfluxStore(url, database, username=reader, password=reader_password) as store:
        with pytest.raises(StoreError, match="not authorized \\(HTTP 403\\)") as refused:
            store.write([tele(T0 + 1, x=2.0)])
        assert not isinstance(refused.value, StoreUnavailable)
        assert store.query_points(M, T0, T0 + 2) == [tele(T0, x=1.0)]


# -- the wire, against a scripted server ---------------------------------------------


def scripted(
    on_write: Callable[[list[str]], httpx.Response], seen: list[httpx.Request] | None = None
) -> httpx.MockTransport:
    """A server that accepts CREATE DATABASE and answers writes with ``on_write(lines)``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        return on_write(gzip.decompress(request.content).decode().split("\n"))

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_server_error_is_unavailable_not_a_rejection(status):
    transport = scripted(lambda lines: httpx.Response(status, json={"error": "overloaded"}))
    store = InfluxStore("http://influx", "db", transport=transport)
    with store, pytest.raises(StoreUnavailable, match="overloaded"):
        store.write([tele(T0, x=1.0)])


def test_a_timeout_is_unavailable():
    def time_out(lines: list[str]) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    store = InfluxStore("http://influx", "db", transport=scripted(time_out))
    with store, pytest.raises(StoreUnavailable):
        store.write([tele(T0, x=1.0)])


def test_a_body_over_the_size_limit_is_split_and_nothing_is_rejected():
    stored: list[str] = []

    def limit_to_3(lines: list[str]) -> httpx.Response:
        if len(lines) > 3:
            return httpx.Response(413, json={"error": "Request Entity Too Large"})
        stored.extend(lines)
        return httpx.Response(204)

    with InfluxStore("http://influx", "db", transport=scripted(limit_to_3)) as store:
        result = store.write([tele(T0 + i, x=float(i)) for i in range(10)])

    assert (result.written, result.rejected, len(stored)) == (10, [], 10)


def test_a_token_goes_in_the_authorization_header():
    seen: list[httpx.Request] = []
    transport = scripted(lambda lines: httpx.Response(204), seen)
    with InfluxStore("http://influx", "db", token="t0k", transport=transport) as store:
        store.write([tele(T0, x=1.0)])

    assert {r.headers["Authorization"] for r in seen} == {"Token t0k"}


def test_a_password_goes_in_basic_auth_never_in_the_url():
    seen: list[httpx.Request] = []
    transport = scripted(lambda lines: httpx.Response(204), seen)
    with InfluxStore(
        "http://influx", "db", username="farmer", password="s3cret", transport=transport
    ) as store:
        store.write([tele(T0, x=1.0)])

    basic = "Basic " + base64.b64encode(b"farmer:s3cret").decode()
    assert {r.headers["Authorization"] for r in seen} == {basic}
    assert not any("s3cret" in str(r.url) for r in seen)


def test_the_repr_shows_no_credentials():
    store = InfluxStore("http://user:pw@127.0.0.1:9", "db", token="s3cret", password="pw")
    try:
        assert "s3cret" not in repr(store)
        assert "pw" not in repr(store)
    finally:
        store.close()
