"""The Grafana dashboards and datasources we provision, held to what Grafana accepts and run.

No Grafana installs here, so its rules are applied as its provisioning reads
them: the dashboards' schema version is the one Grafana 11.2 (the image in
docker-compose.yml) writes, every panel is of a type it ships, every panel and
query names a provisioned datasource by uid and type. Then every query runs on
the real engine: each InfluxQL query (Grafana's macros filled in as Grafana
fills them) on a real influxd holding a backfilled default world, each SQL
query on a real PostgreSQL holding the migrated registry, as the read-only
user deploy/postgres/initdb makes. The PromQL ones run in test_prometheus.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# What the grafana/grafana-oss:11.2 image writes and reads without migrating.
SCHEMA_VERSION = 39
# Panel types Grafana ships (core panels), of those a dashboard of ours may use.
CORE_PANEL_TYPES = {"row", "timeseries", "stat", "table", "bargauge", "gauge", "text"}
SQL_MACROS_DAY = 86400


def datasources() -> dict[str, dict[str, Any]]:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "agrimatch.yml").read_text()
    )
    return {d["uid"]: d for d in provisioned["datasources"]}


def dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def targets(board: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every query on a datasource of ``kind``."""
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if target["datasource"]["type"] == kind:
                out.append((panel["title"], target))
    return out


# -- what Grafana accepts ------------------------------------------------------------


def test_the_datasources_have_fixed_uids_read_only_users_and_no_password_in_the_file():
    sources = datasources()
    assert set(sources) == {"agrimatch-influxdb", "agrimatch-prometheus", "agrimatch-registry"}
    kinds = {uid: d["type"] for uid, d in sources.items()}
    assert kinds["agrimatch-influxdb"] == "influxdb"
    assert kinds["agrimatch-prometheus"] == "prometheus"
    assert kinds["agrimatch-registry"] == "grafana-postgresql-datasource"
    assert sources["agrimatch-influxdb"]["jsonData"]["dbName"] == "agrimatch"
    assert sources["agrimatch-influxdb"]["user"] == "grafana"  # INFLUXDB_READ_USER
    assert sources["agrimatch-registry"]["user"] == "grafana_reader"
    for source in sources.values():
        for value in source.get("secureJsonData", {}).values():
            assert re.fullmatch(r"\$[A-Z_]+", value), "passwords come from the environment"
    # The services they name exist in the stack.
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for source in sources.values():
        host = re.sub(r"^\w+://", "", source["url"]).split(":")[0]
        assert host in services, host


def test_the_dashboards_are_provisioned_from_the_folder_compose_mounts():
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "agrimatch.yml").read_text()
    )["providers"][0]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert [p.name for p in DASHBOARDS] == ["operations.json", "telemetry.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_a_dashboard_is_what_grafana_11_provisions_without_migrating(path):
    board = dashboard(path)
    assert board["schemaVersion"] == SCHEMA_VERSION
    assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"]) and board["title"]
    sources = datasources()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in board["panels"]:
        assert panel["type"] in CORE_PANEL_TYPES, panel["type"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] >= 1, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for holder in (panel, *panel["targets"]):
            source = holder["datasource"]
            assert source["uid"] in sources, (panel["title"], source)
            assert source["type"] == sources[source["uid"]]["type"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] in sources


def test_the_operations_dashboard_shows_ingest_dead_letters_forecast_age_and_job_runs():
    board = dashboard(GRAFANA / "dashboards" / "operations.json")
    text = json.dumps(board)
    for needle in (
        "agrimatch_ingest_messages_received_total",
        "agrimatch_ingest_dead_letters_total",
        "agrimatch_forecast_age_seconds",
        "FROM job_runs",
    ):
        assert needle in text, needle


# -- every InfluxQL query on a real influxd with a backfilled world -------------------


@pytest.fixture(scope="module")
def telemetry_world(influx_server, tmp_path_factory) -> Iterator[tuple[str, str, int, int]]:
    """The default world's last season backfilled into a database of its own (6-hourly,
    device realism on): (base URL, database, first and last point in ms)."""
    from agrimatch.registry import make_engine, migrate, session_factory
    from agrimatch.scenario import load_scenario
    from agrimatch.store.influx import InfluxStore
    from firmware_sim.backfill import BackfillOptions, StoreSink, backfill

    database = "grafana_test"
    store = InfluxStore(influx_server.url, database)
    root = tmp_path_factory.mktemp("grafana-world")
    engine = make_engine(f"sqlite:///{root / 'registry.sqlite3'}")
    migrate(engine)
    try:
        options = BackfillOptions(seasons=1, interval_s=6 * 3600, realism=True)
        result = backfill(
            load_scenario("default"), store, session_factory(engine), StoreSink(store), options
        )
        assert result.telemetry_points > 1000
        times = store.query_points("telemetry", 0, int(4e12))
        first, last = min(p.time_ms for p in times), max(p.time_ms for p in times)
        yield influx_server.url, database, first, last
    finally:
        store.close()
        engine.dispose()
        httpx.post(f"{influx_server.url}/query", data={"q": f'DROP DATABASE "{database}"'})


def grafana_influxql(query: str, start_ms: int, end_ms: int, values: dict[str, str]) -> str:
    """``query`` as Grafana sends it: $timeFilter and $__interval filled in, template
    variables replaced by their regex value (``.*`` for All)."""
    query = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    query = query.replace("$__interval", "6h")
    for name, value in values.items():
        query = query.replace(f"${name}", value)
    # Nothing of Grafana's is left ($ stays only as the regex's end anchor).
    assert not re.search(r"\$\w", query), query
    return query


def run_influxql(url: str, database: str, query: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{url}/query", params={"db": database, "q": query, "epoch": "ms"}, timeout=30
    ).json()
    [result] = answer["results"]
    assert "error" not in result, (query, result["error"])
    return result.get("series", [])


def test_the_telemetry_dashboards_variables_list_the_worlds_farms_and_fields(telemetry_world):
    url, database, start, end = telemetry_world
    board = dashboard(GRAFANA / "dashboards" / "telemetry.json")
    found = {}
    for variable in board["templating"]["list"]:
        query = grafana_influxql(variable["query"], start, end, {"farm": ".*"})
        [series] = run_influxql(url, database, query)
        found[variable["name"]] = {value for _, value in series["values"]}
    from agrimatch.scenario import load_scenario

    farms = load_scenario("default").all_farms()
    assert found["farm"] == {f.id for f in farms}
    assert found["field"] == {plan.id for f in farms for plan in f.fields}


@pytest.mark.parametrize("farm", [".*", "first"])
def test_every_influxql_query_of_the_dashboards_runs_and_returns_the_worlds_data(
    telemetry_world, farm
):
    url, database, start, end = telemetry_world
    if farm == "first":
        from agrimatch.scenario import load_scenario

        farm = load_scenario("default").all_farms()[0].id
    queried = 0
    for path in DASHBOARDS:
        for title, target in targets(dashboard(path), "influxdb"):
            assert target["rawQuery"] and target["resultFormat"] == "time_series"
            query = grafana_influxql(target["query"], start, end, {"farm": farm, "field": ".*"})
            series = run_influxql(url, database, query)
            points = [
                row for s in series for row in s["values"] if any(v is not None for v in row[1:])
            ]
            assert points, f"{title}: no data for {query}"
            queried += 1
    assert queried >= 11


# -- every SQL query on a real PostgreSQL as Grafana's read-only user -----------------


def grafana_sql(query: str, start: datetime, end: datetime) -> str:
    """``query`` with the PostgreSQL datasource's macros as Grafana expands them."""
    query = re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m[1]} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'",
        query,
    )
    query = re.sub(
        r"\$__timeGroupAlias\((\w+), '1d'\)",
        lambda m: f'floor(extract(epoch from {m[1]})/{SQL_MACROS_DAY})*{SQL_MACROS_DAY} AS "time"',
        query,
    )
    assert "$" not in query, query
    return query


def test_the_job_runs_panels_run_as_grafanas_read_only_user_on_the_migrated_registry(
    postgres_server, postgres_url
):
    from agrimatch.registry import make_engine, migrate, session_factory
    from agrimatch.registry.models import JobRun

    database = postgres_url.rsplit("/", 1)[1]
    env = os.environ | {
        "PATH": f"{postgres_server.bindir}:{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(postgres_server.port),
        "POSTGRES_USER": "postgres",  # the owner of what agrimatch migrates here
        "POSTGRES_DB": database,
        "GRAFANA_PG_PASSWORD": "reader-pw",
    }
    init = REPO / "deploy" / "postgres" / "initdb" / "10-grafana-reader.sh"
    made = subprocess.run(["sh", str(init)], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    # The tables come after the role, as in the stack: the API migrates on first start.
    engine = make_engine(postgres_url)
    migrate(engine)
    now = datetime.now(UTC)
    with session_factory(engine).begin() as session:
        for job, status, error in (
            ("forecast", "ok", None),
            ("retrain", "ok", None),
            ("forecast", "failed", "no platform demand recorded before 2026-04-15"),
        ):
            session.add(
                JobRun(
                    job=job,
                    as_of=now.date(),
                    started_at=now - timedelta(minutes=5),
                    ended_at=now,
                    status=status,
                    error=error,
                )
            )
    engine.dispose()
    board = dashboard(GRAFANA / "dashboards" / "operations.json")
    queries = targets(board, "grafana-postgresql-datasource")
    assert len(queries) == 2
    with psycopg.connect(
        host="127.0.0.1", port=postgres_server.port, user="grafana_reader", dbname=database
    ) as reader:
        for title, target in queries:
            sql = grafana_sql(target["rawSql"], now - timedelta(days=1), now + timedelta(hours=1))
            rows = reader.execute(sql).fetchall()
            assert rows, title
            if target["format"] == "table":
                assert {row[3] for row in rows} == {"ok", "failed"}
        reader.rollback()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.execute("DELETE FROM job_runs")
