"""How far the yield forecaster's P50 follows a drought no training season had.

    PYTHONPATH=.:firmware-sim .venv/bin/python bench/yield_drought.py

The held-out Yanchuan season of ``tests/test_yield_model.py`` (its features,
its training seasons, its model), once as it was and once with a May-August
drought injected into the weather: the truth's drop in mean yield beside the
P50's, per crop, with the water factor scaled past each crop's driest training
season (the shipped model) and without (``water_floor_`` emptied), and the
held-out season's P50 WAPE and P10-P90 coverage for both. Without a drought in
any training season, trees alone predict the driest season they learned.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "firmware-sim"), str(ROOT / "tests")]

import test_yield_model as cases  # noqa: E402  (the test's data, features and split)

from agrimatch.scenario import Anomaly, load_scenario  # noqa: E402
from firmware_sim.world.season import simulate_field_season  # noqa: E402
from forecasting.metrics import interval_coverage, wape  # noqa: E402
from forecasting.yield_model import YieldQuantileModel  # noqa: E402


def drought_frames(held_out: pd.DataFrame) -> dict[bool, tuple[pd.DataFrame, np.ndarray]]:
    scenario = load_scenario("yellow-river-jujube")
    year = scenario.first_season + scenario.seasons - 1
    regions = {r.id: r for r in scenario.regions}
    drought = Anomaly(
        kind="drought", region="yanchuan", start=date(year, 5, 1), end=date(year, 8, 31)
    )
    past = held_out.set_index(["farm", "field"])["past_yield_ratio"]
    frames = {}
    for dry in (False, True):
        anomalies = (*scenario.anomalies, drought) if dry else scenario.anomalies
        rows, yields = [], []
        for farm in scenario.all_farms()[: cases.FARMS_PER_SCENARIO]:
            for plan in farm.fields:
                truth = simulate_field_season(
                    farm, plan, regions[farm.region], year, scenario.seed, anomalies
                )
                row = cases.season_features(truth, plan, cases.LEAD_DAYS)
                row["past_yield_ratio"] = past[(farm.id, plan.id)]
                rows.append(row)
                yields.append(truth.yield_t_ha)
        frames[dry] = (pd.DataFrame(rows), np.array(yields))
    return frames


def main() -> None:
    train, held_out = cases.split(cases.field_seasons())
    frames = drought_frames(held_out)
    (normal, truth_normal), (dry, truth_dry) = frames[False], frames[True]
    with threadpool_limits(limits=1, user_api="openmp"):
        model = YieldQuantileModel(feature_columns=cases.FEATURES).fit(train, train["yield_t_ha"])
        print("water floors (lowest training water factor):", model.water_floor_)
        print(f"{'':>26} {'truth':>8} {'P50':>8} {'P50, trees only':>16}")
        trees_only = YieldQuantileModel(feature_columns=cases.FEATURES).fit(
            train, train["yield_t_ha"]
        )
        trees_only.water_floor_ = {}
        crops = normal["crop"].to_numpy()
        for label, rows in [("all", np.ones(len(crops), bool))] + [
            (c, crops == c) for c in sorted(set(crops))
        ]:
            drops = [1.0 - truth_dry[rows].mean() / truth_normal[rows].mean()]
            for m in (model, trees_only):
                drops.append(1.0 - m.predict(dry[rows]).mean() / m.predict(normal[rows]).mean())
            print(f"{'drought drop, ' + label:>26} " + " ".join(f"{-d:>+8.1%}" for d in drops))
        for name, m in (("P50", model), ("trees only", trees_only)):
            q = m.predict_quantiles(held_out)
            score = wape(held_out["yield_t_ha"], q["p50"])
            cover = interval_coverage(held_out["yield_t_ha"], q["p10"], q["p90"])
            print(f"held-out season, {name}: P50 WAPE {score:.1%}, P10-P90 coverage {cover:.1%}")


if __name__ == "__main__":
    main()
