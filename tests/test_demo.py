"""The embedded default: ``agrimatch demo`` with nothing configured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date

import httpx
from rich.console import Console

from agrimatch.cli.demo import DemoOptions, run_demo
from agrimatch.cli.wiring import open_forecast_service
from agrimatch.contract.sensors import FIELD_NODE_SENSORS, SENSORS
from agrimatch.scenario import load_scenario
from agrimatch.settings import Settings
from agrimatch.store import Aggregation
from agrimatch.store.embedded import EmbeddedStore


def test_demo_numbers_agree_with_the_store(tmp_path, monkeypatch):
    monkeypatch.delenv("AGRIMATCH_MQTT_URL", raising=False)
    monkeypatch.delenv("AGRIMATCH_INFLUX_URL", raising=False)
    settings = Settings(data_dir=tmp_path)
    with open(os.devnull, "w") as quiet:
        summary = run_demo(
            settings,
            DemoOptions(
                duration_s=4, speed=120, scenario=load_scenario("default"), realism=True, garbage=4
            ),
            Console(file=quiet),
        )
    assert summary.devices == 9  # the default scenario's 8 field nodes and 1 canopy camera
    assert summary.readings_sent >= 8 * len(FIELD_NODE_SENSORS) * 4
    assert summary.readings_stored == summary.readings_sent
    assert summary.dead_lettered == summary.garbage_sent == 4
    assert summary.consistent

    store = EmbeddedStore(tmp_path / "telemetry.sqlite3")
    try:
        rows = store.aggregate("telemetry", list(SENSORS), Aggregation.COUNT, 0, 2**42)
        # A fresh data dir: everything in the store came from this run.
        assert sum(v or 0 for r in rows for v in r.values.values()) == summary.readings_sent
        groups = store.aggregate(
            "telemetry", ["air_temp"], Aggregation.COUNT, 0, 2**42, group_by=("farm", "field")
        )
        fields = {(r.group["farm"], r.group["field"]) for r in groups}
        assert len(summary.latest) == len(fields) > 1
    finally:
        store.close()


def test_the_main_job_ends_in_the_answer_the_registry_holds(tmp_path):
    # README command 1 with nothing configured: history, live fleet, forecast, the answer.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path)
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [sys.executable, "-m", "agrimatch", "demo", "--duration", "0", "--fleet-seconds", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    assert "consistent" in out and "INCONSISTENT" not in out
    assert "history: seasons 2024, 2025, 2026 of default" in out and "(backfilled)" in out
    assert "the answer, as of 2026-04-15" in out
    service = open_forecast_service(Settings(data_dir=tmp_path))
    try:
        results = service.results(date(2026, 4, 15))
    finally:
        service.store.close()
    assert results is not None and results.campaigns and results.planting
    # The summary shows the registry's campaigns (by date) and planting changes.
    for campaign in results.campaigns[:5]:
        assert f"{campaign.start:%Y-%m-%d} – {campaign.end:%m-%d}" in out
        assert f"{campaign.target_kg / 1000:,.0f}" in out
    for region in results.planting:
        assert f"{region.current_ha:,.1f}" in out and f"{region.recommended_ha:,.1f}" in out
    assert (tmp_path / "telemetry.sqlite3").exists()


def test_the_main_job_serves_the_api_with_a_key_until_its_duration(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "agrimatch", "demo", "--duration", "60", "--fleet-seconds", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = key = None
        assert process.stdout is not None
        for line in process.stdout:  # ends when the process does
            if line.startswith("API: "):
                url = line.split()[1].removesuffix("/v1")
            elif line.startswith("key "):
                key = line.rsplit(" ", 1)[1].strip()
            if url and key:
                break
        assert url and key, "the demo printed no API address and key"
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/v1/jobs").status_code == 401
            jobs = client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"})
            assert jobs.status_code == 200
            assert [r["job"] for r in jobs.json()["items"]] == ["forecast"]
        process.send_signal(signal.SIGINT)  # Ctrl-C ends it before its duration
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
