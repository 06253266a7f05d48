"""API latency and throughput on this machine, every figure beside a bare endpoint in one run.

Backfills the default world into a temporary data dir, runs the forecast as of
2026-04-15, makes an admin, a platform and a device key, and serves the API
with ``agrimatch serve`` (one uvicorn worker, its own process) on a free
127.0.0.1 port. Then, from this process, with a bounded number of requests
at concurrency 10 and 100:

  - ``GET /healthz`` (the bare endpoint: no key, no registry, no store),
  - ``GET /v1/supply`` (platform key),
  - ``GET /v1/farms/{farm}/fields/{field}/forecast`` (admin key),
  - ``GET /v1/recommendations/campaigns`` (admin key),

each with p50, p99, requests/s and the ratio of its p50 and p99 to the bare
endpoint's at the same concurrency; and ``POST /v1/telemetry`` readings/s with
14-reading packs (device key). Where the time goes: the server's own time per
route (its ``/metrics`` histogram) beside what the client saw, and a profile
of the slowest read's handler in-process.

    .venv/bin/python bench/api_latency.py [--requests 2000] [--packs 3000]

Loopback only; every loop is bounded and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agrimatch.auth import create_key, pepper  # noqa: E402
from agrimatch.cli.wiring import open_forecast_service  # noqa: E402
from agrimatch.registry.models import Device  # noqa: E402
from agrimatch.scenario import load_scenario  # noqa: E402
from agrimatch.settings import Settings  # noqa: E402
from firmware_sim.backfill import BackfillOptions, StoreSink, backfill  # noqa: E402

AS_OF = date(2026, 4, 15)
SENSORS_14 = (
    ("air_temp", "Cel", 21.0), ("air_temp_min", "Cel", 19.0), ("air_temp_max", "Cel", 23.0),
    ("air_rh", "%RH", 60.0), ("rain", "mm", 0.0), ("solar_rad", "W/m2", 500.0),
    ("soil_moisture_10cm", "%", 25.0), ("soil_moisture_30cm", "%", 27.0),
    ("soil_temp", "Cel", 18.0), ("leaf_wetness", "%", 10.0), ("battery", "V", 3.9),
    ("rsrp", "dBm", -95.0), ("sinr", "dB", 12.0), ("latency", "ms", 40.0),
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(data_dir: Path) -> tuple[dict[str, str], tuple[str, str], str]:
    """The default world, a forecast run, and keys: (keys by role, a field, platform id)."""
    settings = Settings(data_dir=data_dir)
    service = open_forecast_service(settings)
    try:
        backfill(
            load_scenario("default"),
            service.store,
            service.sessions,
            StoreSink(service.store),
            BackfillOptions(seasons=3, interval_s=21600.0, realism=False),
        )
        run = service.run_forecast(AS_OF)
        assert run.ok, run.run.error
        results = service.results(AS_OF)
        assert results is not None and results.supply and results.campaigns
        field = (results.fields[0].farm, results.fields[0].field)
        platform = results.campaigns[0].platform
        with service.sessions.begin() as session:
            device = session.query(Device).first()
            assert device is not None
            key_pepper = pepper(settings)
            keys = {
                "admin": create_key(session, name="bench", role="admin", pepper=key_pepper)[1],
                "platform": create_key(
                    session, name="bench-p", role="platform", platform_id=platform,
                    pepper=key_pepper,
                )[1],
                "device": create_key(
                    session, name="bench-d", role="device", device_id=device.id,
                    pepper=key_pepper,
                )[1],
                "device_id": device.id,
            }  # fmt: skip
    finally:
        service.store.close()
    return keys, field, platform


async def load(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str],
    total: int, concurrency: int, bodies: list[bytes] | None = None,
) -> tuple[list[float], float, int]:  # fmt: skip
    """``total`` requests, ``concurrency`` at a time: latencies (s), wall time, errors."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        for n in counter:
            content = None if bodies is None else bodies[n % len(bodies)]
            started = time.perf_counter()
            response = await client.request(method, path, headers=headers, content=content)
            latencies.append(time.perf_counter() - started)
            # A pack answered 200 may still have had records refused: those count too.
            if response.status_code >= 400 or (
                method == "POST" and response.json().get("records_rejected")
            ):
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began, errors


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def telemetry_bodies(device: str, count: int) -> list[bytes]:
    # Recent times: ingest refuses samples older than its max age (90 days by default).
    base = time.time() - 60 * count - 3600
    bodies = []
    for n in range(count):
        records: list[dict[str, object]] = [
            {"n": name, "u": unit, "v": value} for name, unit, value in SENSORS_14
        ]
        records[0] = {"bn": f"urn:dev:agrimatch:{device}:", "bt": base + 60 * n, **records[0]}
        bodies.append(json.dumps(records).encode())
    return bodies


def server_times(metrics_text: str) -> dict[str, tuple[float, float]]:
    """route -> (requests, seconds) from the server's latency histogram."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        for suffix, into in (("_sum{", sums), ("_count{", counts)):
            if line.startswith("agrimatch_api_request_duration_seconds" + suffix):
                labels, value = line.rsplit(" ", 1)
                route = labels.split('route="', 1)[1].split('"', 1)[0]
                into[route] = into.get(route, 0.0) + float(value)
    return {route: (counts.get(route, 0.0), sums[route]) for route in sums}


def profile_handler(data_dir: Path, path: str, token: str, requests: int) -> str:
    """The top of a cProfile of ``requests`` calls of ``path`` through the app in-process."""
    from fastapi.testclient import TestClient

    from api import create_app

    with TestClient(create_app(Settings(data_dir=data_dir))) as client:
        headers = {"Authorization": f"Bearer {token}"}
        client.get(path, headers=headers)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            client.get(path, headers=headers)
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint and concurrency")
    parser.add_argument("--packs", type=int, default=3000, help="telemetry packs to post")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agrimatch-bench-api-") as tmp:
        data_dir = Path(tmp)
        print("preparing the default world and a forecast …", flush=True)
        keys, (farm, field), platform = prepare(data_dir)
        port = free_port()
        server_log = (data_dir / "server.log").open("w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
        env["AGRIMATCH_DATA_DIR"] = str(data_dir)
        # One device key posts every pack: its rate limit would measure the limiter.
        env["AGRIMATCH_API_DEVICE_RATE_PER_S"] = "0"
        server = subprocess.Popen(
            [sys.executable, "-m", "agrimatch", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=server_log,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            print(asyncio.run(run_load(base, keys, farm, field, args)))
            with httpx.Client(base_url=base) as client:
                times = server_times(client.get("/metrics").text)
            print("\nserver time per request (its own histogram) — the rest is HTTP + client:")
            for route, (count, seconds) in sorted(times.items()):
                if count:
                    print(f"  {route:58s} {1000 * seconds / count:7.2f} ms over {count:,.0f}")
        except Exception:
            server_log.flush()
            print((data_dir / "server.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(30)
            server_log.close()
        path = f"/v1/farms/{farm}/fields/{field}/forecast"
        print(f"\nprofile of 300 × GET {path} in-process (cumulative):")
        print(profile_handler(data_dir, path, keys["admin"], 300))
        del platform


async def run_load(base: str, keys: dict[str, str], farm: str, field: str, args) -> str:
    reads = {
        "GET /healthz (bare)": ("/healthz", {}),
        "GET /v1/supply": (
            "/v1/supply",
            {"Authorization": f"Bearer {keys['platform']}"},
        ),
        "GET /v1/farms/{farm}/fields/{field}/forecast": (
            f"/v1/farms/{farm}/fields/{field}/forecast",
            {"Authorization": f"Bearer {keys['admin']}"},
        ),
        "GET /v1/recommendations/campaigns": (
            "/v1/recommendations/campaigns",
            {"Authorization": f"Bearer {keys['admin']}"},
        ),
    }
    lines = [
        f"{'operation':48s} {'conc':>4s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s':>8s} "
        f"{'p50/bare':>8s} {'p99/bare':>8s} {'errors':>6s}"
    ]
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        for concurrency in (10, 100):
            bare: tuple[float, float] | None = None
            for name, (path, headers) in reads.items():
                await load(client, "GET", path, headers, 50, concurrency)  # warm up
                latencies, wall, errors = await load(
                    client, "GET", path, headers, args.requests, concurrency
                )
                p50, p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
                bare = bare or (p50, p99)
                lines.append(
                    f"{name:48s} {concurrency:4d} {1000 * p50:8.2f} {1000 * p99:8.2f} "
                    f"{len(latencies) / wall:8.0f} {p50 / bare[0]:8.2f} {p99 / bare[1]:8.2f} "
                    f"{errors:6d}"
                )
                print(lines[-1], flush=True)
        device_headers = {
            "Authorization": f"Bearer {keys['device']}",
            "Content-Type": "application/senml+json",
        }
        bodies = telemetry_bodies(keys["device_id"], args.packs)
        latencies, wall, errors = await load(
            client, "POST", "/v1/telemetry", device_headers, args.packs, 10, bodies
        )
        lines.append(
            f"POST /v1/telemetry: {args.packs:,} packs of 14 readings at concurrency 10 in "
            f"{wall:.1f} s = {14 * args.packs / wall:,.0f} readings/s "
            f"(p50 {1000 * quantile(latencies, 0.5):.1f} ms, errors {errors})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
