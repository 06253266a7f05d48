"""Line protocol builders side by side: influxdb-client's Point vs the cached LineBuilder.

    .venv/bin/python bench/line_protocol.py [--points 200000] [--devices 1000]

Builds the same telemetry points both ways in one run (interleaved rounds, best
of each), checks the lines are identical, and prints points/s and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agrimatch.contract.sensors import SENSORS
from agrimatch.store import Point
from agrimatch.store.influx import LineBuilder, to_line


def make_points(count: int, devices: int) -> list[Point]:
    sensors = list(SENSORS)
    points = []
    for i in range(count):
        d = i % devices
        tags = {
            "farm": f"farm-{d % 20:02d}",
            "field": f"field-{d % 7:02d}",
            "device": f"dev-{d:04d}",
        }
        fields = {s: round(10 + (i * 7 + k) % 97 * 0.37, 2) for k, s in enumerate(sensors)}
        points.append(Point("telemetry", tags, fields, 1_764_072_000_000 + i * 1000))
    return points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    points = make_points(args.points, args.devices)
    best = {"Point": float("inf"), "LineBuilder": float("inf")}
    for _ in range(args.rounds):
        started = time.perf_counter()
        reference = [to_line(p) for p in points]
        best["Point"] = min(best["Point"], time.perf_counter() - started)
        builder = LineBuilder()  # a cold cache each round: first sight of every series counts
        started = time.perf_counter()
        fast = [builder.line(p) for p in points]
        best["LineBuilder"] = min(best["LineBuilder"], time.perf_counter() - started)
        assert fast == reference
    for name, seconds in best.items():
        print(f"{name:12s} {args.points / seconds:12,.0f} points/s ({len(SENSORS)} fields each)")
    print(f"ratio LineBuilder / Point = {best['Point'] / best['LineBuilder']:.2f}x")


if __name__ == "__main__":
    main()
