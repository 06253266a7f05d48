"""What a pack's size does to ingest: the pipeline into a real InfluxDB, 3 vs 14 readings.

    .venv/bin/python bench/ingest_pack_size.py [--messages 40000] [--batch 2000]

bench/ingest_throughput.py measured ``agrimatch ingest`` with packs of 3
readings; a field node sends 14 (its 12 sensors plus the air temperature's
min/max registers) and a camera 6. This runs ingest's transport-independent
pipeline (``ingest.pipeline.TelemetryPipeline``: decode, validate, build line
protocol, write to InfluxDB, acknowledge) on the same number of packs of each
size, one process, one thread, against a real influxd started on loopback in a
temporary directory, so the ratio of the two rates says how many devices one
ingest process carries at the real pack size (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agrimatch.clock import SimulatedClock
from agrimatch.contract.sensors import FIELD_NODE_SENSORS, SENSORS
from agrimatch.contract.telemetry import Reading, encode_telemetry
from agrimatch.contract.topics import DeviceAddress
from agrimatch.store.influx import InfluxStore
from ingest.deadletter import MemoryDeadLetterSink
from ingest.pipeline import InboundMessage, TelemetryPipeline
from tests.services import InfluxServer

THREE = ("air_temp", "air_rh", "soil_moisture_10cm")


def value(sensor: str, k: int) -> float:
    spec = SENSORS[sensor]
    low, high = spec.minimum, spec.maximum
    return round(low + (high - low) * (0.3 + 0.4 * ((k * 7919) % 1000) / 1000), 2)


def messages(
    count: int, sensors: tuple[str, ...], devices: int, start_s: float
) -> list[InboundMessage]:
    out = []
    for i in range(count):
        d = i % devices
        address = DeviceAddress(f"farm-{d % 50}", f"field-{d % 7}", f"dev-{d:05d}")
        t_ms = int((start_s + (i // devices) * 60) * 1000)
        readings = [Reading(s, t_ms, value(s, i + j)) for j, s in enumerate(sensors)]
        out.append(
            InboundMessage(
                address.telemetry_topic, encode_telemetry(address.device, readings), time.time()
            )
        )
    return out


def run(url: str, database: str, sensors: tuple[str, ...], count: int, batch: int) -> float:
    store = InfluxStore(url, database)
    start_s = time.time() - 6 * 3600
    inbound = messages(count, sensors, 1000, start_s)
    pipeline = TelemetryPipeline(
        store, MemoryDeadLetterSink(), SimulatedClock(time.time(), speed=1.0)
    )
    stop = threading.Event()
    started = time.perf_counter()
    for first in range(0, count, batch):
        report = pipeline.process(inbound[first : first + batch], stop)
        assert report.acked and all(o.accepted and not o.problems for o in report.outcomes)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        server = InfluxServer(Path(root))
        server.start()
        try:
            print("| pack | readings | packs/s | readings/s | relative packs/s |")
            print("| --- | ---: | ---: | ---: | ---: |")
            base = None
            for name, sensors in (("3 readings", THREE), ("field node", FIELD_NODE_SENSORS)):
                seconds = run(
                    server.url, f"bench_{len(sensors)}", sensors, args.messages, args.batch
                )
                rate = args.messages / seconds
                base = base or rate
                print(
                    f"| {name} | {len(sensors)} | {rate:,.0f} | {rate * len(sensors):,.0f} | "
                    f"{rate / base:.2f} |"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
