"""Simulator throughput against real Mosquitto and InfluxDB, measured in one run.

    .venv/bin/python bench/sim_throughput.py [--devices 5000] [--duration 130]
                                             [--scenario default] [--seasons 1]

(1) Live fleet: one simulator process runs ``--devices`` sensor nodes at 60 s
    intervals in real time (speed 1) against a real Mosquitto for
    ``--duration`` seconds; prints the connect time, the packs asked for by
    the schedule vs the packs the broker acknowledged, the ratio, and the
    process's peak RSS.
(2) Backfill: the scenario's seasons at hourly samples, side by side into a
    sink that discards (generation alone), the embedded store, and a real
    InfluxDB; readings per minute for each and the ratios to generation.

Everything binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agrimatch.clock import RealClock  # noqa: E402
from agrimatch.contract.telemetry import Reading  # noqa: E402
from agrimatch.contract.topics import DeviceAddress  # noqa: E402
from agrimatch.mqtt import MqttEndpoint  # noqa: E402
from agrimatch.registry import make_engine, migrate, session_factory  # noqa: E402
from agrimatch.scenario import load_scenario  # noqa: E402
from agrimatch.store.embedded import EmbeddedStore  # noqa: E402
from agrimatch.store.influx import InfluxStore  # noqa: E402
from firmware_sim import Fleet, plan_fleet  # noqa: E402
from firmware_sim.backfill import BackfillOptions, StoreSink, backfill  # noqa: E402
from tests.services import InfluxServer, MosquittoServer  # noqa: E402

INTERVAL_S = 60.0


class DiscardSink:
    """Counts and drops: what the simulator generates with no store behind it."""

    def add(self, address: DeviceAddress, readings: list[Reading]) -> None:
        pass

    def flush(self) -> None:
        pass


def live_fleet(broker: MosquittoServer, devices: int, duration_s: float) -> None:
    specs = plan_fleet(devices, seed=1, interval_s=INTERVAL_S)
    fleet = Fleet(specs, MqttEndpoint.from_url(broker.url), RealClock(), seed=1)
    process = psutil.Process()

    async def run() -> tuple[float, float]:
        stop = asyncio.Event()
        task = asyncio.create_task(fleet.run(duration_s, stop))
        started = time.perf_counter()
        connected_at = math.nan
        while not task.done():
            await asyncio.sleep(0.5)
            if (
                math.isnan(connected_at)
                and fleet.nodes
                and all(n.connected for n in fleet.nodes.values())
            ):
                connected_at = time.perf_counter() - started
        return connected_at, time.perf_counter() - started

    started_at = time.time()
    connect_s, elapsed_s = asyncio.run(run())
    # Packs the schedule asks for: every grid time k*60 + phase within the run.
    asked = sum(
        len(
            range(
                math.ceil((started_at - s.phase_s) / s.interval_s),
                math.ceil((started_at + duration_s - s.phase_s) / s.interval_s),
            )
        )
        for s in specs
    )
    sent = sum(n.stats.messages_sent for n in fleet.nodes.values())
    readings = sum(n.stats.readings_sent for n in fleet.nodes.values())
    rss_mib = process.memory_info().rss / 2**20
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"(1) live fleet: {devices:,} devices at {INTERVAL_S:.0f} s, real time, {duration_s:.0f} s"
    )
    print(f"    all connected after {connect_s:,.1f} s; run took {elapsed_s:,.1f} s")
    print(
        f"    packs asked by the schedule {asked:,}, acknowledged by the broker {sent:,}, "
        f"ratio {sent / asked:.3f}"
    )
    print(
        f"    sustained {sent / duration_s:,.1f} packs/s "
        f"({readings / duration_s:,.0f} readings/s); "
        f"RSS {rss_mib:,.0f} MiB, peak {peak_mib:,.0f} MiB"
    )


def backfill_rates(influx: InfluxServer, scenario_name: str, seasons: int, tmp: Path) -> None:
    scenario = load_scenario(scenario_name)
    options = BackfillOptions(seasons=seasons, interval_s=3600.0)
    results = {}
    for name in ("generation only", "embedded SQLite", "InfluxDB 1.6"):
        engine = make_engine(f"sqlite:///{tmp / f'registry-{len(results)}.sqlite3'}")
        migrate(engine)
        if name == "InfluxDB 1.6":
            store = InfluxStore(influx.url, "bench_backfill")
        else:
            store = EmbeddedStore(tmp / f"store-{len(results)}.sqlite3")
        sink = DiscardSink() if name == "generation only" else StoreSink(store)
        report = backfill(scenario, store, session_factory(engine), sink, options)
        results[name] = report
        store.close()
        engine.dispose()
    base = results["generation only"].readings_per_minute
    print(f"(2) backfill of {scenario_name!r}, {seasons} season(s), hourly samples, with realism:")
    for name, report in results.items():
        print(
            f"    {name:16s} {report.readings:>11,} readings in {report.seconds:6.1f} s = "
            f"{report.readings_per_minute:>12,.0f} readings/min "
            f"(x{report.readings_per_minute / base:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=130.0)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--seasons", type=int, default=1)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * args.devices + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # mosquitto inherits it
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"open files {wanted:,}"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        broker = MosquittoServer(tmp / "mosquitto")
        influx = InfluxServer(tmp / "influx")
        broker.start()
        influx.start()
        try:
            live_fleet(broker, args.devices, args.duration)
            backfill_rates(influx, args.scenario, args.seasons, tmp)
        finally:
            broker.stop()
            influx.stop()


if __name__ == "__main__":
    main()
