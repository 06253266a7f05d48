"""Yield P10–P90 coverage per scenario and lead: the backtest's yield part alone.

``agrimatch backtest`` also replays demand and campaigns, which takes most of its
time; this runs only its yield part (:func:`forecasting.backtest.yield_predictions`,
the same code and options) on a scenario's history, backfilled into ``--work-dir``
as the backtest does (or reused: point it at a backtest's work directory), and
prints per lead the coverage of the intervals as forecast, of the model's own
calibration alone where the code records it (``p10_model``), the share
recalibrated on earlier years' forecasts, and the widest P90 as a share of the
crop's potential. Run it from two trees (``PYTHONPATH=<tree>:<tree>/firmware-sim``)
to compare code on one world.

    .venv/bin/python bench/yield_intervals.py --scenario garlic-glut --scale 0.1 \\
        --seasons 4 --work-dir /tmp/yield-intervals/garlic-glut
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from agrimatch.agronomy import CROPS
from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.registry.models import Season
from agrimatch.scenario import load_scenario
from agrimatch.store.embedded import EmbeddedStore
from firmware_sim.backfill import BackfillOptions, StoreSink, backfill, season_years
from forecasting.backtest import BacktestOptions, _truth_years, yield_predictions
from forecasting.chain_data import load_chain_data


def _covered(frame: pd.DataFrame, low: str, high: str) -> float:
    if low not in frame:
        return float("nan")
    truth = frame["truth"].to_numpy()
    return float(np.mean((truth >= frame[low]) & (truth <= frame[high])))


def scores(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per lead (and all leads): fields, coverage as forecast and of the model alone, the
    share recalibrated on stored forecasts, the widest P90 over its crop's potential."""
    potential = predictions["crop"].map(lambda c: CROPS[c].potential_yield_t_ha)
    predictions = predictions.assign(
        p90_share=predictions["p90"] / potential,
        width=(predictions["p90"] - predictions["p10"]) / potential,
    )
    if "p10_model" in predictions:
        model_width = (predictions["p90_model"] - predictions["p10_model"]) / potential
        predictions = predictions.assign(width_model=model_width)
    rows = []
    groups = [*predictions.groupby("lead_days", sort=False), ("all", predictions)]
    for lead, group in groups:
        stored = group["calibration"] == "stored_residuals" if "calibration" in group else None
        rows.append(
            {
                "lead_days": lead,
                "fields": len(group),
                "coverage_p10_p90": _covered(group, "p10", "p90"),
                "coverage_model_only": _covered(group, "p10_model", "p90_model"),
                "stored_calibrated_share": float("nan") if stored is None else stored.mean(),
                "coverage_where_stored": float("nan")
                if stored is None or not stored.any()
                else _covered(group[stored], "p10", "p90"),
                "max_p90_over_potential": float(group["p90_share"].max()),
                # Mean P10-P90 width over the crop's potential, as forecast and model alone.
                "width": float(group["width"].mean()),
                "width_model": float(group["width_model"].mean())
                if "width_model" in group
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seasons", type=int, default=None)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None, help="also write the scores here")
    args = parser.parse_args()

    scenario = load_scenario(args.scenario).scaled(args.scale)
    years = season_years(scenario, args.seasons)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    store = EmbeddedStore(args.work_dir / "telemetry.sqlite3")
    engine = make_engine(f"sqlite:///{args.work_dir / 'registry.sqlite3'}")
    try:
        migrate(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            known = session.query(Season).filter(Season.yield_t_ha.is_not(None)).count()
        if not known:
            options = BackfillOptions(seasons=args.seasons, interval_s=21600.0, realism=False)
            backfill(scenario, store, sessions, StoreSink(store), options)
        with sessions() as session:
            data = load_chain_data(
                store, session, date(years[0] - 2, 1, 1), date(years[-1] + 1, 1, 1)
            )
    finally:
        store.close()
        engine.dispose()
    options = BacktestOptions()
    evaluation = _truth_years(data.seasons)[options.min_training_seasons :]
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="openmp"):
        predictions = yield_predictions(data, evaluation, options)
    seconds = time.perf_counter() - started
    table = scores(predictions)
    print(f"{args.scenario} (scale {args.scale}), evaluated {evaluation}, {seconds:.0f} s")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.json is not None:
        args.json.write_text(json.dumps(table.to_dict(orient="records"), default=str, indent=2))
        predictions.to_csv(args.json.with_suffix(".csv"), index=False)


if __name__ == "__main__":
    main()
