"""Soak: N minutes of steady telemetry through real Mosquitto, ``agrimatch ingest`` and
InfluxDB, sampling ingest's memory, queue and end-to-end latency over time.

    python bench/soak.py                      # 30 minutes at 100 packs/s
    python bench/soak.py --minutes 5 --rate 200 --sample-s 15

Not in CI (it is meant to run long). Starts its own Mosquitto and InfluxDB on free
loopback ports in a temp dir (tests/services.py) and ``agrimatch ingest`` as a
separate process with its Prometheus port on. Every ``--sample-s`` seconds it
prints a row: packs sent and stored, ingest's RSS, its queue depth (received, not
yet taken by the writer) and unacknowledged messages (received minus acked), and
the latency of a probe pack from publish to readable in InfluxDB. At the end: the
latency percentiles, the RSS drift, and whether every pack sent is stored.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ helpers, run as a script

from agrimatch.contract.telemetry import Reading, encode_telemetry
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from agrimatch.store.influx import InfluxStore
from firmware_sim import DeviceSpec
from tests.faults.load import IngestProcess, registry_for
from tests.services import InfluxServer, MosquittoServer

DATABASE = "soak"
PROBE = DeviceAddress("soak-farm", "soak-field", "soak-probe")


@dataclass
class Sample:
    t_s: float
    sent: int
    stored: int
    rss_mb: float
    queue_depth: int
    unacked: int
    latency_ms: float | None


class Fleet:
    """``devices`` sending packs in turn at ``rate`` per second; each pack a new point.

    Sample times start two days back and step one second per pack of a device, so
    they stay in the past (ingest refuses future times) and never meet the probe's.
    """

    def __init__(self, endpoint: MqttEndpoint, rate: float, devices: int) -> None:
        self.rate = rate
        self.addresses = self.addresses_for(devices)
        self.sent = 0
        self._start_ms = int((time.time() - 2 * 86400) * 1000)
        self._stop = threading.Event()
        self.client = make_paho_client(endpoint, "soak-fleet")
        self.client.max_queued_messages_set(0)
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="soak-fleet", daemon=True)

    @staticmethod
    def addresses_for(devices: int) -> list[DeviceAddress]:
        return [
            DeviceAddress(f"farm-{d % 5}", f"field-{d % 11}", f"soak-{d:04d}")
            for d in range(devices)
        ]

    def _run(self) -> None:
        started = time.monotonic()
        n = 0
        while not self._stop.is_set():
            delay = started + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            address = self.addresses[n % len(self.addresses)]
            t_ms = self._start_ms + (n // len(self.addresses)) * 1000
            readings = [Reading("air_temp", t_ms, 20.0 + n % 7), Reading("air_rh", t_ms, 55.0)]
            payload = encode_telemetry(address.device, readings)
            self.client.publish(address.telemetry_topic, payload, qos=1)
            n += 1
            self.sent = n

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def probe_latency_ms(self, store: InfluxStore, timeout_s: float = 30.0) -> float | None:
        """Publish a pack sampled now and wait until InfluxDB returns it."""
        t_ms = int(time.time() * 1000)
        payload = encode_telemetry(PROBE.device, [Reading("air_temp", t_ms, 21.5)])
        sent = time.monotonic()
        self.client.publish(PROBE.telemetry_topic, payload, qos=1)
        while time.monotonic() - sent < timeout_s:
            if store.query_points("telemetry", t_ms, t_ms + 1):
                return (time.monotonic() - sent) * 1000
            time.sleep(0.01)
        return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def specs_of(addresses: list[DeviceAddress]) -> list[DeviceSpec]:
    """The soak's devices as the registry needs them (ingest checks every device's place)."""
    return [
        DeviceSpec(address, interval_s=60.0, phase_s=0.0, lat=34.72, lon=113.98, region="soak")
        for address in addresses
    ]


def count_points(influx: InfluxServer) -> int:
    query = "SELECT count(air_rh) FROM telemetry WHERE device =~ /^soak-[0-9]/"
    answer = httpx.get(f"{influx.url}/query", params={"db": DATABASE, "q": query}, timeout=60)
    series = answer.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0, help="packs per second")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--sample-s", type=float, default=30.0)
    options = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="agrimatch-soak-"))
    broker = MosquittoServer(root / "mosquitto")
    influx = InfluxServer(root / "influxdb")
    broker.start()
    influx.start()
    fleet_addresses = Fleet.addresses_for(options.devices)
    registry = registry_for(root, specs_of([*fleet_addresses, PROBE]))
    ingest = IngestProcess(broker, influx, DATABASE, "ingest-soak", registry_url=registry)
    store = InfluxStore(influx.url, DATABASE)
    samples: list[Sample] = []
    try:
        ingest.start()
        assert ingest.pid is not None
        process = psutil.Process(ingest.pid)
        fleet = Fleet(MqttEndpoint.from_url(broker.url), options.rate, options.devices)
        fleet.start()
        print(
            f"soak: {options.minutes:g} min at {options.rate:g} packs/s from "
            f"{options.devices} devices; logs in {root}"
        )
        header = f"{'t s':>6} {'sent':>8} {'stored':>8} {'RSS MB':>7} {'queue':>6} "
        print(header + f"{'unacked':>8} {'e2e ms':>7}")
        started = time.monotonic()
        end = started + options.minutes * 60
        while time.monotonic() < end:
            time.sleep(max(0.0, min(options.sample_s, end - time.monotonic())))
            latency = fleet.probe_latency_ms(store)
            metrics = ingest.metrics()
            received = metrics.get("agrimatch_ingest_messages_received_total", 0)
            acked = metrics.get("agrimatch_ingest_messages_acked_total", 0)
            sample = Sample(
                t_s=time.monotonic() - started,
                sent=fleet.sent,
                stored=int(metrics.get("agrimatch_ingest_points_written_total", 0)),
                rss_mb=process.memory_info().rss / 2**20,
                queue_depth=int(metrics.get("agrimatch_ingest_queue_depth", 0)),
                unacked=int(received - acked),
                latency_ms=latency,
            )
            samples.append(sample)
            shown = "lost" if latency is None else f"{latency:.0f}"
            print(
                f"{sample.t_s:6.0f} {sample.sent:8d} {sample.stored:8d} {sample.rss_mb:7.1f} "
                f"{sample.queue_depth:6d} {sample.unacked:8d} {shown:>7}",
                flush=True,
            )
        fleet.stop()
        # Everything sent must arrive: wait (bounded) for the store to hold it all.
        deadline = time.monotonic() + 120
        while count_points(influx) < fleet.sent and time.monotonic() < deadline:
            time.sleep(1)
        stored = count_points(influx)
        fleet.close()
    finally:
        store.close()
        ingest.stop()
        influx.stop()
        broker.stop()
    latencies = sorted(s.latency_ms for s in samples if s.latency_ms is not None)
    rate = fleet.sent / (options.minutes * 60)
    print(f"\nsent {fleet.sent} packs ({rate:.0f}/s), stored {stored}, lost {fleet.sent - stored}")
    if latencies:
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        print(
            f"end-to-end latency ms: p50 {statistics.median(latencies):.0f}, "
            f"p95 {p95:.0f}, max {latencies[-1]:.0f} ({len(latencies)} probes)"
        )
    if samples:
        print(
            f"ingest RSS MB: first {samples[0].rss_mb:.1f}, last {samples[-1].rss_mb:.1f}, "
            f"max {max(s.rss_mb for s in samples):.1f}; queue depth max "
            f"{max(s.queue_depth for s in samples)}, unacked max {max(s.unacked for s in samples)}"
        )


if __name__ == "__main__":
    main()
