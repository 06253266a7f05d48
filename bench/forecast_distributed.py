"""Per-field and demand forecasts in one process and on a Dask cluster: fields/s, speed-up.

    .venv/bin/python bench/forecast_distributed.py [--farms-per-region 40] [--copies 4]
        [--workers 2] [--repeat 2]

The world is tests/regional_world.py's: the four case scenarios' regions
(Zhongmou, Korla, Mengzi, Yanchuan), each repeated ``--copies`` times under
new region ids, ``--farms-per-region`` farms each, seasons 2022-2024, as of
2024-04-15. The yield model (default hyperparameters) is trained once on the
two past seasons; the demand model is fitted once. Then, each ``--repeat``
times, side by side:

  - the per-field stage (features, yield quantiles and drivers, harvest
    windows: ``forecasting.chain.field_forecasts``) in this process, one
    thread, and on a ``LocalCluster`` of ``--workers`` processes of one thread
    each (``forecasting.distributed.DaskForecastEngine``);
  - the demand forecast (``DemandQuantileModel.forecast``) the same two ways;

each checked equal to the last digit. With ``--store DIR`` (an embedded SQLite
store is written there from the world's daily telemetry, tests/regional_store.py)
the per-field stage is timed as the scheduler runs it: one process reads all
the telemetry from the store and forecasts; the cluster's workers each read
their own regions' farms from the store (``ChainData.daily_in_store``), the
calling process loading none. Reported: seconds, fields/s, the
speed-up, the pickled size of each model shipped to the workers, and the
time the cluster took to start (paid once per scheduler process).
Loopback only; the cluster is stopped at the end.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agrimatch.settings import load_settings
from agrimatch.store.embedded import EmbeddedStore
from agrimatch.store.factory import EMBEDDED_FILE_NAME
from forecasting.chain import field_forecasts, train_yield_model
from forecasting.chain_data import planned_seasons, split_seasons
from forecasting.demand_data import weekly
from forecasting.demand_model import DemandQuantileModel
from forecasting.distributed import DaskForecastEngine
from forecasting.telemetry_frames import daily_field_frame, day_start_ms, empty_daily_frame
from tests.regional_store import write_daily
from tests.regional_world import regional_world


def timed(fn, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def _busiest_worker_s(engine: DaskForecastEngine, stage: str) -> float:
    """The longest any worker computed in the stage: the cluster's time with its data
    already on the workers."""
    per_worker: dict[int, float] = {}
    for run in engine.last_runs:
        if run.stage == stage:
            per_worker[run.worker_pid] = per_worker.get(run.worker_pid, 0.0) + run.compute_s
    return max(per_worker.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--farms-per-region", type=int, default=40)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()

    with threadpool_limits(1):
        seconds, world = timed(regional_world, args.farms_per_region, args.copies)
        data = world.data.until(world.as_of)
        history, current = split_seasons(data.seasons, world.as_of)
        fields = pd.concat([current, planned_seasons(data.seasons, world.as_of, current)])
        print(
            f"world: {len(world.regions)} regions, {len(fields):,} field-seasons to forecast, "
            f"{len(data.daily):,} daily rows (built in {seconds:.1f} s)"
        )
        seconds, trained = timed(train_yield_model, world.data, world.as_of)
        model = trained.model
        rows_trained = trained.metrics["training_rows"]
        print(f"yield model trained once in {seconds:.1f} s on {rows_trained:.0f} rows")
        demand_weekly = weekly(data.demand_daily)
        origin = world.as_of - timedelta(days=world.as_of.weekday() + 7)
        demand_model = DemandQuantileModel(max_horizon_weeks=26)
        seconds, _ = timed(
            lambda: demand_model.fit(
                demand_weekly[demand_weekly["week"] <= origin], campaigns=data.campaigns
            )
        )
        print(
            f"demand model fitted once in {seconds:.1f} s on {demand_model.n_training_rows_:,} rows"
        )
        for name, fitted in (("yield", model), ("demand", demand_model)):
            size_mib = len(pickle.dumps(fitted)) / 2**20
            print(f"{name} model shipped to each worker: {size_mib:.1f} MiB pickled")

        settings = None
        if args.store is not None:
            args.store.mkdir(parents=True, exist_ok=True)
            with EmbeddedStore(args.store / EMBEDDED_FILE_NAME) as store:
                seconds, points = timed(write_daily, store, world.data.daily)
            print(f"store: {points:,} points written to {args.store} in {seconds:.1f} s")
            settings = load_settings(data_dir=args.store)
            first = min(world.data.daily["day"])
            left = replace(data, daily=empty_daily_frame(), daily_in_store=(first, world.as_of))

        def one_from_store() -> pd.DataFrame:
            with EmbeddedStore(args.store / EMBEDDED_FILE_NAME) as store:
                daily = daily_field_frame(store, day_start_ms(first), day_start_ms(world.as_of))
            return field_forecasts(replace(data, daily=daily), fields, history, model, world.as_of)

        started = time.perf_counter()
        with DaskForecastEngine(
            "local", local_workers=args.workers, store_settings=settings
        ) as engine:
            engine.client.wait_for_workers(args.workers, timeout=120)
            started_s = time.perf_counter() - started
            print(f"LocalCluster of {args.workers} processes started in {started_s:.1f} s")
            rows = []
            for run in range(1, args.repeat + 1):
                one_s, one = timed(field_forecasts, data, fields, history, model, world.as_of)
                many_s, many = timed(
                    engine.field_forecasts, data, fields, history, model, world.as_of
                )
                pd.testing.assert_frame_equal(many, one, check_exact=True)
                rows.append(
                    ("fields", run, len(fields), one_s, many_s, _busiest_worker_s(engine, "fields"))
                )
                if settings is not None:
                    one_s, one = timed(one_from_store)
                    many_s, many = timed(
                        engine.field_forecasts, left, fields, history, model, world.as_of
                    )
                    pd.testing.assert_frame_equal(many, one, check_exact=True)
                    busiest = _busiest_worker_s(engine, "fields")
                    rows.append(
                        ("fields, read from store", run, len(fields), one_s, many_s, busiest)
                    )
                one_s, one = timed(demand_model.forecast, demand_weekly, origin, 26, data.campaigns)
                many_s, many = timed(
                    engine.demand_forecast, demand_model, demand_weekly, origin, 26, data.campaigns
                )
                pd.testing.assert_frame_equal(many, one, check_exact=True)
                series = one.groupby(["platform", "crop", "region"]).ngroups
                rows.append(
                    ("demand", run, series, one_s, many_s, _busiest_worker_s(engine, "demand"))
                )
            partitions = len([r for r in engine.last_runs if r.stage == "fields"])
        print(f"\npartitions per stage: {partitions} (2 x worker threads); results identical: yes")
        # The busiest worker's own compute time is what the cluster would take with the
        # data already on the workers; the rest of its wall time is cutting, shipping,
        # gathering.
        print(
            "| stage | run | items | 1 process s | cluster s | busiest worker s | "
            "1 process items/s | cluster items/s | speed-up | speed-up, data on workers |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for stage, run, items, one_s, many_s, busiest_s in rows:
            print(
                f"| {stage} | {run} | {items:,} | {one_s:.2f} | {many_s:.2f} | {busiest_s:.2f} | "
                f"{items / one_s:,.0f} | {items / many_s:,.0f} | {one_s / many_s:.2f}x | "
                f"{one_s / busiest_s:.2f}x |"
            )


if __name__ == "__main__":
    main()
