"""The Prometheus configuration we ship, checked by promtool and run by a real Prometheus.

Debian's ``prometheus`` scrapes a running ``agrimatch serve`` and an ``agrimatch
ingest`` (its metrics port) on loopback, with deploy/prometheus/prometheus.yml's
jobs and alert rules; only the targets are rewritten from the stack's service
names to this machine's ports. Then every PromQL expression of the Grafana
operations dashboard is evaluated by that Prometheus.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.loadgen import Publisher, make_messages, wait_until
from tests.services import LOCALHOST, free_port

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: apt-get install prometheus", pytrace=False)
    return found


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    return env | extra


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_promtool_accepts_the_shipped_config_and_its_alert_rules():
    promtool = _binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "7 rules found" in checked.stdout + checked.stderr
    rules = subprocess.run(
        [promtool, "check", "rules", str(PROMETHEUS_DIR / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``agrimatch serve`` on a free loopback port (embedded store, SQLite registry)."""
    port = free_port()
    data = tmp_path_factory.mktemp("api-data")
    log = (data / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "agrimatch", "serve", "--host", LOCALHOST, "--port", str(port)],
        env=_clean_env(AGRIMATCH_DATA_DIR=str(data)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{LOCALHOST}:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(ready, 120, 0.5), (data / "serve.log").read_text()[-3000:]
        yield url
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="module")
def ingest_metrics(
    tmp_path_factory: pytest.TempPathFactory, mosquitto_server, influx_server
) -> Iterator[tuple[str, Any]]:
    """``agrimatch ingest`` with its metrics port, on the session's Mosquitto and InfluxDB."""
    port = free_port()
    root = tmp_path_factory.mktemp("ingest")
    log = (root / "ingest.log").open("wb")
    process = subprocess.Popen(
        # --no-shared: its persistent session would otherwise keep a share of the session
        # broker's shared subscription after this test, taking messages from later tests.
        [
            sys.executable,
            "-m",
            "agrimatch",
            "ingest",
            "--client-id",
            "ingest-prometheus",
            "--no-shared",
        ],
        env=_clean_env(
            AGRIMATCH_MQTT_URL=mosquitto_server.url,
            AGRIMATCH_INFLUX_URL=influx_server.url,
            AGRIMATCH_INFLUX_DB="prometheus_test",
            AGRIMATCH_INGEST_METRICS_PORT=str(port),
            AGRIMATCH_INGEST_METRICS_HOST=LOCALHOST,
            AGRIMATCH_INGEST_LINGER_MS="50",
            # Made-up device ids, no registry: each bad message must get its own reason.
            AGRIMATCH_INGEST_CHECK_PLACE="false",
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{LOCALHOST}:{port}/metrics"
    try:

        def connected() -> bool:
            try:
                return "agrimatch_ingest_connected 1.0" in httpx.get(url, timeout=2).text
            except httpx.HTTPError:
                return False

        assert wait_until(connected, 120, 0.5), (root / "ingest.log").read_text()[-3000:]
        yield f"{LOCALHOST}:{port}", mosquitto_server
    finally:
        _stop(process)
        log.close()
        httpx.post(f"{influx_server.url}/query", data={"q": "DROP DATABASE prometheus_test"})


def loopback_config(api: str, ingest: str, prometheus: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its targets on this machine, scraped every
    second (the jobs, paths and rule files unchanged)."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets = {"agrimatch-api": [api], "agrimatch-ingest": [ingest], "prometheus": [prometheus]}
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    return config


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, api_server, ingest_metrics) -> Iterator[str]:
    """A real Prometheus scraping the two agrimatch processes; its base URL."""
    root = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    api = api_server.removeprefix("http://")
    config = loopback_config(api, ingest_metrics[0], f"{LOCALHOST}:{port}")
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROMETHEUS_DIR / "alerts.yml", root / "alerts.yml")
    checked = subprocess.run(
        [_binary("promtool"), "check", "config", str(root / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            _binary("prometheus"),
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address={LOCALHOST}:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://{LOCALHOST}:{port}"
    try:

        def all_up() -> bool:
            try:
                active = httpx.get(f"{url}/api/v1/targets", timeout=2).json()["data"]
            except (httpx.HTTPError, ValueError, KeyError):
                return False
            targets = active["activeTargets"]
            return len(targets) == 3 and all(t["health"] == "up" for t in targets)

        assert wait_until(all_up, 90, 0.5), (root / "prometheus.log").read_text()[-3000:]
        yield url
    finally:
        _stop(process)
        log.close()


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the shipped dashboards, Grafana's interval filled in."""
    exprs = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("type") == "prometheus":
                    exprs.append(target["expr"].replace("$__rate_interval", "1m"))
    return exprs


def test_prometheus_scrapes_the_api_and_ingest_with_the_shipped_jobs(prometheus):
    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]
    jobs = {t["labels"]["job"]: t for t in targets["activeTargets"]}
    assert set(jobs) == {"agrimatch-api", "agrimatch-ingest", "prometheus"}
    assert all(t["health"] == "up" and not t["lastError"] for t in jobs.values())
    assert query(prometheus, 'up{job="agrimatch-api"}')[0]["value"][1] == "1"
    assert query(prometheus, "agrimatch_ingest_connected")[0]["value"][1] == "1"


def test_the_alert_rules_load_and_evaluate_without_error(prometheus):
    def loaded() -> list[dict[str, Any]]:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    assert wait_until(lambda: len(loaded()) == 7 and all(r["health"] == "ok" for r in loaded()), 30)
    assert {r["name"] for r in loaded()} >= {
        "IngestReceivedNotStored",
        "IngestDisconnected",
        "DeadLettersRising",
        "ForecastStale",
    }


def test_every_operations_dashboard_query_runs_and_the_key_series_have_data(
    prometheus, api_server, ingest_metrics
):
    # Traffic for the series to exist: requests to the API; telemetry and garbage for ingest.
    for path in ("/healthz", "/readyz", "/v1/devices", "/nope"):
        httpx.get(f"{api_server}{path}", timeout=10)
    from agrimatch.mqtt import MqttEndpoint

    broker = ingest_metrics[1]
    publisher = Publisher(MqttEndpoint.from_url(broker.url))
    messages = make_messages(3, 5, time.time() - 3600)
    publisher.publish_all(messages)
    publisher.publish(messages[0].address.telemetry_topic, b"not json").wait_for_publish(10)
    publisher.close()
    assert wait_until(
        lambda: (
            bool(query(prometheus, "agrimatch_ingest_dead_letters_total"))
            and float(query(prometheus, "agrimatch_ingest_messages_acked_total")[0]["value"][1])
            >= len(messages) + 1
            and bool(query(prometheus, 'agrimatch_api_requests_total{status="401"}'))
        ),
        60,
        0.5,
    )
    time.sleep(3)  # a few samples after the traffic, for rate() and increase()
    exprs = dashboard_expressions()
    assert len(exprs) >= 15
    empty = [expr for expr in exprs if not query(prometheus, expr)]
    # The forecast age is absent until a forecast has run; HTTP telemetry was not used.
    assert set(empty) <= {
        "agrimatch_forecast_age_seconds",
        "sum by (reason) (increase(agrimatch_api_dead_letters_total[1m]))",
    }, empty
    [dead] = query(prometheus, "agrimatch_ingest_dead_letters_total")
    assert dead["metric"]["reason"] == "not_json"
