"""The forecast chain on a Dask cluster gives exactly what one process gives.

A real ``LocalCluster`` of two worker processes (one thread each) on a world of
four regions (tests/regional_world.py): the per-field forecasts and the demand
forecast, partitioned by region, compared with the one-process functions to
the last digit (``check_exact``), then the whole chain (forecasts, supply,
demand, balance, campaigns, planting) with and without the engine. The world's
telemetry is also written into a real embedded store (tests/regional_store.py)
that the workers read their own regions' farms from, and ``run_chain`` on a
backfilled store and registry is run with workers reading the store (the
calling process loading no telemetry) against one process. Light model
hyperparameters keep the fits short; identity does not depend on them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from agrimatch.settings import Settings, load_settings
from agrimatch.store.embedded import EmbeddedStore
from agrimatch.store.factory import EMBEDDED_FILE_NAME
from forecasting.chain import (
    ChainOptions,
    TrainedYieldModel,
    field_forecasts,
    forecast_as_of,
    run_chain,
    training_set,
)
from forecasting.chain_data import ChainData, planned_seasons, split_seasons
from forecasting.demand_combination import CombinedDemandForecaster
from forecasting.demand_data import weekly
from forecasting.distributed import DaskForecastEngine, engine_for, region_partitions
from forecasting.features import FEATURE_COLUMNS
from forecasting.telemetry_frames import daily_field_frame, day_start_ms, empty_daily_frame
from forecasting.yield_model import YieldQuantileModel
from tests.regional_store import write_daily
from tests.regional_world import RegionalWorld, regional_world

LIGHT_YIELD = {"max_iter": 40, "calibration_folds": 3}


@dataclass(frozen=True)
class Fitted:
    world: RegionalWorld
    trained: TrainedYieldModel
    fields: pd.DataFrame
    history: pd.DataFrame


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    world = regional_world(farms_per_region=2, demand_from=date(2022, 6, 1))
    data = world.data.until(world.as_of)
    history, current = split_seasons(data.seasons, world.as_of)
    X, y = training_set(data.daily, history, (90, 60, 30))
    model = YieldQuantileModel(feature_columns=FEATURE_COLUMNS, **LIGHT_YIELD).fit(X, y)
    fields = pd.concat([current, planned_seasons(data.seasons, world.as_of, current)])
    return Fitted(world, TrainedYieldModel(model, "test", "", {}), fields, history)


@dataclass(frozen=True)
class Stored:
    settings: Settings  # the embedded store holding the world's telemetry
    loaded: ChainData  # as known on as_of, telemetry read from that store by this process
    left: ChainData  # the same, telemetry left in the store for the workers


@pytest.fixture(scope="module")
def stored(fitted, tmp_path_factory) -> Stored:
    world = fitted.world
    root = tmp_path_factory.mktemp("regional-store")
    first = min(world.data.daily["day"])
    with EmbeddedStore(root / EMBEDDED_FILE_NAME) as store:
        write_daily(store, world.data.daily)
        daily = daily_field_frame(store, day_start_ms(first), day_start_ms(world.as_of))
    data = world.data.until(world.as_of)
    return Stored(
        load_settings(data_dir=root),
        replace(data, daily=daily),
        replace(data, daily=empty_daily_frame(), daily_in_store=(first, world.as_of)),
    )


@pytest.fixture(scope="module")
def engine(stored) -> Iterator[DaskForecastEngine]:
    with DaskForecastEngine("local", local_workers=2, store_settings=stored.settings) as engine:
        # Started here, so a slow start on a busy machine is not any test's time.
        engine.client.wait_for_workers(2, timeout=120)
        yield engine


def test_regions_are_packed_largest_first_onto_the_lightest_partition_never_split():
    sizes = {"korla": 50, "mengzi": 30, "yanchuan": 30, "zhongmou": 10, "aksu": 5}
    # 50 | 30+30 | then 10 and 5 onto the lighter: 65 against 60.
    assert region_partitions(sizes, 2) == [("aksu", "korla", "zhongmou"), ("mengzi", "yanchuan")]
    assert region_partitions(sizes, 10) == [(r,) for r in ("korla", "mengzi", "yanchuan")] + [
        ("zhongmou",),
        ("aksu",),
    ]
    assert region_partitions(sizes, 1) == [tuple(sorted(sizes))]


def test_a_cluster_address_is_local_or_a_scheduler_url():
    assert engine_for(None) is None and engine_for("") is None
    assert engine_for("local") is not None
    assert engine_for("tcp://dask-scheduler:8786") is not None
    with pytest.raises(ValueError, match="tcp://host:8786"):
        engine_for("dask-scheduler")


def test_per_field_forecasts_on_two_workers_equal_one_process_to_the_last_digit(fitted, engine):
    world, model, as_of = fitted.world, fitted.trained.model, fitted.world.as_of
    data = world.data.until(as_of)
    # Korla's pears are left out: its partition holds only maize still to be sown, the
    # case where a partition starts from an empty feature frame.
    fields = fitted.fields[
        ~((fitted.fields["region"] == "korla") & (fitted.fields["planted_on"] <= as_of))
    ]
    assert (fields["planted_on"] > as_of).any() and (fields["region"] == "korla").any()
    one = field_forecasts(data, fields, fitted.history, model, as_of)
    many = engine.field_forecasts(data, fields, fitted.history, model, as_of)
    pd.testing.assert_frame_equal(many, one, check_exact=True)
    assert set(one["region"]) == set(world.regions)


def test_the_work_is_split_over_both_workers_and_each_model_is_shipped_once_to_each(fitted, engine):
    data = fitted.world.data.until(fitted.world.as_of)
    engine.field_forecasts(
        data, fitted.fields, fitted.history, fitted.trained.model, fitted.world.as_of
    )
    runs = [r for r in engine.last_runs if r.stage == "fields"]
    assert sorted(r for run in runs for r in run.regions) == sorted(fitted.world.regions)
    assert sum(run.rows_in for run in runs) == len(fitted.fields)
    workers = {run.worker_pid for run in runs}
    assert len(workers) == 2 and os.getpid() not in workers
    assert engine.models_shipped["yield"] == 2


def test_the_demand_forecast_on_two_workers_equals_one_process_to_the_last_digit(fitted, engine):
    data = fitted.world.data.until(fitted.world.as_of)
    history = weekly(data.demand_daily)
    origin = fitted.world.as_of - timedelta(days=fitted.world.as_of.weekday() + 7)
    # The shipped combination, light: a half-year calibration span, so that the world's
    # 97 weeks of demand give each series its own weight and interval shift.
    model = CombinedDemandForecaster(
        max_iter=40, max_horizon_weeks=26, calibration_weeks=26, min_weeks_before_calibration=26
    )
    with threadpool_limits(1):
        model.fit(history[history["week"] <= origin], campaigns=data.campaigns)
    assert model.calibrated_ and len(set(model.series_weight_.values())) > 1
    one = model.forecast(history, origin, 26, campaigns=data.campaigns)
    many = engine.demand_forecast(model, history, origin, 26, data.campaigns)
    pd.testing.assert_frame_equal(many, one, check_exact=True)
    assert set(one["region"]) == set(fitted.world.regions)
    assert engine.models_shipped["demand"] == 2
    assert len({r.worker_pid for r in engine.last_runs if r.stage == "demand"}) == 2


def test_the_whole_chain_with_the_engine_equals_one_process(fitted, engine):
    world = fitted.world
    one = forecast_as_of(world.data, world.as_of, fitted.trained)
    many = forecast_as_of(world.data, world.as_of, fitted.trained, ChainOptions(engine=engine))
    for frame in ("forecasts", "supply", "demand", "balance"):
        pd.testing.assert_frame_equal(getattr(many, frame), getattr(one, frame), check_exact=True)
    assert many.campaigns == one.campaigns
    assert repr(sorted(many.metrics.items())) == repr(sorted(one.metrics.items()))  # NaN too
    if one.planting is None:
        assert many.planting is None and many.planting_error == one.planting_error
    else:
        assert many.planting is not None
        for frame in ("farms", "regions"):
            pd.testing.assert_frame_equal(
                getattr(many.planting, frame), getattr(one.planting, frame), check_exact=True
            )
        assert many.planting.summary == one.planting.summary
    assert len(one.forecasts) == len(fitted.fields)


def test_workers_read_their_regions_telemetry_from_the_store_and_equal_one_process(
    fitted, stored, engine
):
    as_of = fitted.world.as_of
    one = field_forecasts(stored.loaded, fitted.fields, fitted.history, fitted.trained.model, as_of)
    many = engine.field_forecasts(
        stored.left, fitted.fields, fitted.history, fitted.trained.model, as_of
    )
    pd.testing.assert_frame_equal(many, one, check_exact=True)
    runs = [r for r in engine.last_runs if r.stage == "fields"]
    assert len({run.worker_pid for run in runs}) == 2
    assert all(run.read_s > 0 for run in runs)  # each partition read its own telemetry


def test_an_engine_without_the_stores_settings_refuses_telemetry_left_in_the_store(fitted, stored):
    shipping = DaskForecastEngine("local", local_workers=1)  # never started: refused first
    assert not shipping.reads_telemetry
    with pytest.raises(ValueError, match="load it"):
        shipping.field_forecasts(
            stored.left, fitted.fields, fitted.history, fitted.trained.model, fitted.world.as_of
        )
    remote = DaskForecastEngine("tcp://elsewhere:8786", store_settings=stored.settings)
    assert not remote.reads_telemetry  # the embedded file is not on the workers' machines
    influx = load_settings(influx_url="http://influxdb:8086")
    assert DaskForecastEngine("tcp://elsewhere:8786", store_settings=influx).reads_telemetry


def test_run_chain_leaves_the_telemetry_to_the_workers_and_forecasts_as_one_process(
    backfilled_world, engine
):
    store, sessions, root = backfilled_world("default", seasons=3)
    as_of, models = date(2026, 4, 15), root / "models"
    with threadpool_limits(1), sessions() as session:
        one = run_chain(store, session, as_of, model_dir=models)  # stores the model if new
        engine.store_settings, kept = load_settings(data_dir=root), engine.store_settings
        try:
            many = run_chain(
                store, session, as_of, model_dir=models, options=ChainOptions(engine=engine)
            )
        finally:
            engine.store_settings = kept
    assert many.model_version == one.model_version
    runs = [r for r in engine.last_runs if r.stage == "fields"]
    assert runs and all(run.read_s > 0 for run in runs)
    for frame in ("forecasts", "supply", "demand", "balance"):
        pd.testing.assert_frame_equal(getattr(many, frame), getattr(one, frame), check_exact=True)
    assert many.campaigns == one.campaigns


def test_the_setting_names_a_local_cluster_or_a_scheduler_and_the_service_gets_its_engine(
    tmp_path,
):
    from agrimatch.cli.wiring import open_forecast_service
    from agrimatch.settings import SettingsError, load_settings

    assert load_settings(forecast_cluster="").forecast_cluster is None
    assert load_settings(forecast_cluster="tcp://dask:8786").forecast_cluster == "tcp://dask:8786"
    with pytest.raises(SettingsError, match="AGRIMATCH_FORECAST_CLUSTER"):
        load_settings(forecast_cluster="dask:8786")
    service = open_forecast_service(load_settings(data_dir=tmp_path, forecast_cluster="local"))
    try:
        engine = service.options.engine
        assert isinstance(engine, DaskForecastEngine) and engine.address == "local"
        assert engine.reads_telemetry and engine.store_settings is not None
        assert engine.store_settings.data_dir == tmp_path
        assert engine._client is None  # nothing started until a forecast needs it
    finally:
        service.store.close()
    plain = open_forecast_service(load_settings(data_dir=tmp_path))
    try:
        assert plain.options.engine is None
    finally:
        plain.store.close()
