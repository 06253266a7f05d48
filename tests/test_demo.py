"""The embedded default: ``agrimatch demo`` with nothing configured."""

from __future__ import annotations

import os
import subprocess
import sys

from rich.console import Console

from agrimatch.cli.demo import DemoOptions, run_demo
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


def test_demo_command_runs_with_nothing_configured(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "agrimatch", "demo", "--duration", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "consistent" in result.stdout and "INCONSISTENT" not in result.stdout
    assert (tmp_path / "telemetry.sqlite3").exists()
