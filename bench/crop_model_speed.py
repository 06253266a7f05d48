"""How fast the world simulates field-seasons (what a backfill spends on the crop model).

    .venv/bin/python bench/crop_model_speed.py [--scenario default] [--seasons 3] [--repeat 3]
        [--baseline SECONDS_PER_1000]

Simulates every field-season of a shipped scenario (farm weather, crop, soil
water balance, yield) with the memo cleared, ``--repeat`` times, and prints
the best time per 1,000 field-seasons; with ``--baseline`` (a figure printed
by an earlier run, e.g. before a change to the crop model) it prints the two
side by side and their ratio. Single process, no I/O.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agrimatch.scenario import load_scenario
from firmware_sim.world.season import scenario_seasons, simulate_season


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--seasons", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=float, default=None, help="ms per 1,000 seasons")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario).model_copy(update={"seasons": args.seasons})
    best = float("inf")
    count = 0
    for _ in range(args.repeat):
        simulate_season.cache_clear()
        start = time.perf_counter()
        count = sum(1 for _ in scenario_seasons(scenario))
        best = min(best, time.perf_counter() - start)
    per_1000 = best / count * 1000.0
    print(f"{args.scenario}: {count} field-seasons, best of {args.repeat}: {best:.2f} s")
    print(f"  {per_1000:.2f} s per 1,000 field-seasons ({count / best:.0f} seasons/s)")
    if args.baseline is not None:
        print(
            f"  baseline {args.baseline:.2f} s per 1,000 -> ratio now/baseline "
            f"{per_1000 / args.baseline:.2f}"
        )


if __name__ == "__main__":
    main()
