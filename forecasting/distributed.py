"""The chain's per-field and demand forecasts on a Dask cluster, partitioned by region.

Why a region is the unit of work: everything the per-field step computes
beyond a field's own rows needs a whole region and nothing more — a crop's
degree-day climatology in the region (harvest windows) and a crop's past
yields in the region (fields not sown yet) — while a field's features,
quantiles and drivers are its own ("the same whatever else is forecast with
it", :mod:`forecasting.drivers`). Demand series are keyed by platform, crop
and region, and each is forecast from its own history. So regions are packed
into partitions (largest first onto the lightest partition), each partition
runs the very functions one process runs (:func:`forecasting.chain.field_forecasts`,
the fitted demand forecaster's ``forecast``) on its regions' rows, and the
results are put back in the one-process order: identical to the last digit,
which ``tests/test_distributed_forecast.py`` checks on the whole chain.

Telemetry, the bulk of the input, is read by the workers: when the chain's
data leaves the daily telemetry in the store (:attr:`ChainData.daily_in_store`,
what :func:`forecasting.chain.run_chain` does when this engine
:attr:`~DaskForecastEngine.reads_telemetry` and the weekly retrain has stored
the model), each partition's task opens the store from the settings it is
given (InfluxDB's URL and credentials, or the embedded SQLite file) and reads
its own regions' farms (:func:`~forecasting.telemetry_frames.daily_field_frame`
with ``farms=``), so the calling process neither loads nor ships it. The
embedded store is a file on this machine: its workers read it only on a
``local`` cluster (SQLite lets several processes read one file); a remote
cluster over the embedded store gets the frames shipped, as does a what-if,
whose telemetry is reweathered in the calling process.

Models are fitted once, in the calling process (the yield model by the weekly
retrain or the run, the demand forecaster by the run), and shipped to every
worker once per run (``Client.scatter(..., broadcast=True)``); every partition's task
refers to that one copy instead of carrying its own.

The engine is Dask distributed, nothing of ours: ``local`` starts a
``LocalCluster`` of worker processes on this machine (one thread each, as
many as cores); ``tcp://host:8786`` connects to a running ``dask scheduler``
with ``dask worker`` processes on other machines (docs/scaling.md).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from agrimatch.settings import Settings
from agrimatch.store.factory import EMBEDDED_FILE_NAME, open_store
from forecasting.chain import field_forecasts
from forecasting.chain_data import CAMPAIGN_COLUMNS, ChainData
from forecasting.demand_model import SERIES_KEYS, DemandForecaster
from forecasting.frames import DEMAND_COLUMNS
from forecasting.telemetry_frames import daily_field_frame, day_start_ms
from forecasting.yield_model import YieldQuantileModel

log = logging.getLogger(__name__)

LOCAL = "local"
"""The cluster address that starts a ``LocalCluster`` of processes on this machine."""

_ROW_KEY = ("farm", "field", "year")


@dataclass(frozen=True, slots=True)
class PartitionRun:
    """One partition of a run: its regions, how many rows it took, which worker ran it and
    for how long (the task's own time, without shipping its data; reading its telemetry
    from the store included, ``read_s`` of it, 0 when the telemetry was shipped)."""

    stage: str  # "fields" or "demand"
    regions: tuple[str, ...]
    rows_in: int
    worker_pid: int
    compute_s: float
    read_s: float = 0.0


def region_partitions(sizes: Mapping[str, int], partitions: int) -> list[tuple[str, ...]]:
    """Regions packed into at most ``partitions`` groups of similar total size.

    Longest-processing-time first: regions from the largest down (ties by
    name, so the packing is deterministic), each onto the group with the
    least so far. A region is never split. Groups come back with their
    regions sorted, empty groups left out.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    groups: list[list[str]] = [[] for _ in range(partitions)]
    loads = [0] * partitions
    for region in sorted(sizes, key=lambda r: (-sizes[r], r)):
        lightest = min(range(partitions), key=lambda i: (loads[i], i))
        groups[lightest].append(region)
        loads[lightest] += sizes[region]
    return [tuple(sorted(group)) for group in groups if group]


# -- what runs on a worker: the one-process functions on a partition's rows -----------


def _field_forecasts_task(
    model: YieldQuantileModel,
    seasons: pd.DataFrame,
    daily: pd.DataFrame,
    fields: pd.DataFrame,
    history: pd.DataFrame,
    as_of: date,
) -> tuple[int, float, float, pd.DataFrame]:
    started = time.perf_counter()
    forecasts = _forecast_fields(model, seasons, daily, fields, history, as_of)
    return os.getpid(), time.perf_counter() - started, 0.0, forecasts


def _field_forecasts_from_store_task(
    model: YieldQuantileModel,
    settings: Settings,
    period: tuple[date, date],
    seasons: pd.DataFrame,
    fields: pd.DataFrame,
    history: pd.DataFrame,
    as_of: date,
) -> tuple[int, float, float, pd.DataFrame]:
    """The partition's forecasts from its farms' telemetry, read here from the store."""
    started = time.perf_counter()
    first, end = period
    store_file = settings.data_dir / EMBEDDED_FILE_NAME
    if not settings.influx_url and not store_file.exists():
        # open_store would create an empty file, and the forecast would silently
        # lack all telemetry: a worker on another machine than the embedded store.
        raise RuntimeError(
            f"forecast worker (pid {os.getpid()}) cannot read the embedded store "
            f"{store_file}: it is not on this machine; use InfluxDB (AGRIMATCH_INFLUX_URL) "
            "with a remote AGRIMATCH_FORECAST_CLUSTER, or a local one"
        )
    store = open_store(settings)
    try:
        farms = sorted(set(seasons["farm"]))
        daily = daily_field_frame(store, day_start_ms(first), day_start_ms(end), farms=farms)
    finally:
        store.close()
    # As ChainData.until(as_of) cuts the calling process's frame.
    daily = daily[daily["day"] < as_of]
    read_s = time.perf_counter() - started
    forecasts = _forecast_fields(model, seasons, daily, fields, history, as_of)
    return os.getpid(), time.perf_counter() - started, read_s, forecasts


def _forecast_fields(
    model: YieldQuantileModel,
    seasons: pd.DataFrame,
    daily: pd.DataFrame,
    fields: pd.DataFrame,
    history: pd.DataFrame,
    as_of: date,
) -> pd.DataFrame:
    """:func:`forecasting.chain.field_forecasts` on a partition's rows."""
    # field_forecasts reads only the seasons and the daily telemetry of ChainData.
    data = ChainData(
        seasons=seasons,
        daily=daily,
        demand_daily=pd.DataFrame(),
        campaigns=pd.DataFrame(columns=list(CAMPAIGN_COLUMNS)),
        platforms=(),
    )
    return field_forecasts(data, fields, history, model, as_of)


def _demand_forecast_task(
    model: DemandForecaster,
    history_weekly: pd.DataFrame,
    origin_week: date,
    horizon_weeks: int,
    campaigns: pd.DataFrame,
) -> tuple[int, float, pd.DataFrame]:
    started = time.perf_counter()
    demand = model.forecast(history_weekly, origin_week, horizon_weeks, campaigns)
    return os.getpid(), time.perf_counter() - started, demand


# -- the engine ------------------------------------------------------------------------


class DaskForecastEngine:
    """A :class:`forecasting.chain.ForecastEngine` on Dask distributed.

    ``address`` is :data:`LOCAL` or a scheduler address (``tcp://host:8786``).
    ``store_settings`` are the settings the workers open the telemetry store with
    (:attr:`reads_telemetry`); None ships the telemetry from the calling process.
    The client (and a local cluster) is started at first use and kept until
    :meth:`close`: a scheduler process forecasts every day. ``partitions``
    defaults to twice the cluster's worker threads, so a slow region does not
    leave the other workers idle at the end. ``local_workers`` sizes a local
    cluster (default: this machine's cores).
    """

    def __init__(
        self,
        address: str,
        *,
        partitions: int | None = None,
        local_workers: int | None = None,
        store_settings: Settings | None = None,
    ) -> None:
        self.address = address
        self.store_settings = store_settings
        self.partitions = partitions
        self.local_workers = local_workers
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()
        self.last_runs: list[PartitionRun] = []
        self.models_shipped: dict[str, int] = {}  # model -> workers holding it, last run

    @property
    def reads_telemetry(self) -> bool:
        """Whether the workers read the daily telemetry from the store: given its settings,
        and the store is InfluxDB or the cluster is on this machine (the embedded file)."""
        if self.store_settings is None:
            return False
        return bool(self.store_settings.influx_url) or self.address == LOCAL

    # -- lifecycle -----------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``distributed.Client``, connected (and a local cluster started) on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        # Imported here: only a configured cluster pays for Dask's import.
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise RuntimeError(
                "AGRIMATCH_FORECAST_CLUSTER is set but Dask is not installed: "
                "pip install 'agrimatch[cluster]'"
            ) from None

        if self.address == LOCAL:
            workers = self.local_workers or os.cpu_count() or 1
            # Processes, one thread each: the per-field work is pandas and numpy code
            # that holds the GIL much of the time, so threads would not scale.
            self._cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            log.info("forecast cluster: local, %d worker processes", workers)
            return Client(self._cluster)
        log.info("forecast cluster: %s", self.address)
        return Client(self.address, timeout="30s")

    def close(self) -> None:
        """Disconnect, and stop a local cluster."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None

    def __enter__(self) -> DaskForecastEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _partition_count(self) -> int:
        if self.partitions is not None:
            return self.partitions
        threads = sum(self.client.nthreads().values())
        return max(1, 2 * threads)

    def _ship(self, name: str, model: object) -> Any:
        """The model on every worker, once: a future each task takes as its argument."""
        future = self.client.scatter(model, broadcast=True, hash=False)
        self.models_shipped[name] = len(self.client.who_has([future]).get(future.key, ()))
        return future

    # -- the two stages ------------------------------------------------------------

    def field_forecasts(
        self,
        data: ChainData,
        fields: pd.DataFrame,
        history: pd.DataFrame,
        model: YieldQuantileModel,
        as_of: date,
    ) -> pd.DataFrame:
        """:func:`forecasting.chain.field_forecasts` (with drivers), one partition of regions
        per task."""
        self.last_runs = [r for r in self.last_runs if r.stage != "fields"]
        if fields.empty:
            return field_forecasts(data, fields, history, model, as_of)
        sizes = fields.groupby("region").size().to_dict()
        groups = region_partitions(sizes, self._partition_count())
        period = data.daily_in_store
        if period is not None and (self.store_settings is None or not self.reads_telemetry):
            raise ValueError(
                "the chain's telemetry was left in the store, but this engine's workers "
                "do not read it (no store settings, or an embedded store and a remote "
                "cluster): load it (load_chain_data(..., daily=True))"
            )
        shipped = self._ship("yield", model)
        futures = []
        for regions in groups:
            seasons = data.seasons[data.seasons["region"].isin(regions)]
            own = (
                fields[fields["region"].isin(regions)],
                history[history["region"].isin(regions)],
                as_of,
            )
            if period is not None:
                futures.append(
                    self.client.submit(
                        _field_forecasts_from_store_task,
                        shipped,
                        self.store_settings,
                        period,
                        seasons,
                        *own,
                        pure=False,
                    )
                )
                continue
            # The calling process has the telemetry (a what-if reweathers it): its
            # regions' rows go with the task.
            farm_region = data.seasons.drop_duplicates("farm").set_index("farm")["region"]
            in_regions = data.daily["farm"].map(farm_region).isin(regions).to_numpy()
            futures.append(
                self.client.submit(
                    _field_forecasts_task,
                    shipped,
                    seasons,
                    data.daily[in_regions],
                    *own,
                    pure=False,
                )
            )
        results = self.client.gather(futures)
        for regions, (pid, seconds, read_s, _) in zip(groups, results, strict=True):
            rows = int(fields["region"].isin(regions).sum())
            self.last_runs.append(PartitionRun("fields", regions, rows, pid, seconds, read_s))
        sown = fields["planted_on"].map(lambda d: d <= as_of).to_numpy()
        return _in_field_order(
            [part for *_, part in results],
            [bool(sown[fields["region"].isin(regions).to_numpy()].any()) for regions in groups],
            fields,
            sown,
        )

    def demand_forecast(
        self,
        model: DemandForecaster,
        history_weekly: pd.DataFrame,
        origin_week: date,
        horizon_weeks: int,
        campaigns: pd.DataFrame,
    ) -> pd.DataFrame:
        """``model.forecast(...)``, the series of one partition of regions per task."""
        self.last_runs = [r for r in self.last_runs if r.stage != "demand"]
        if history_weekly.empty:
            return model.forecast(history_weekly, origin_week, horizon_weeks, campaigns)
        sizes = history_weekly.groupby("region").size().to_dict()
        groups = region_partitions(sizes, self._partition_count())
        shipped = self._ship("demand", model)
        futures = [
            self.client.submit(
                _demand_forecast_task,
                shipped,
                history_weekly[history_weekly["region"].isin(regions)],
                origin_week,
                horizon_weeks,
                campaigns,
                pure=False,
            )
            for regions in groups
        ]
        results = self.client.gather(futures)
        for regions, (pid, seconds, _) in zip(groups, results, strict=True):
            rows = int(history_weekly["region"].isin(regions).sum())
            self.last_runs.append(PartitionRun("demand", regions, rows, pid, seconds))
        parts = [part for _, _, part in results if len(part)]
        if not parts:
            return pd.DataFrame(columns=list(DEMAND_COLUMNS))
        # One process forecasts the series in (platform, crop, region) order, each
        # series' weeks in order: a stable sort of the partitions' rows restores it.
        joined = pd.concat(parts, ignore_index=True)
        order = joined.sort_values(list(SERIES_KEYS), kind="stable").index
        return joined.loc[order].reset_index(drop=True)


def _in_field_order(
    parts: Sequence[pd.DataFrame],
    had_sown: Sequence[bool],
    fields: pd.DataFrame,
    sown: Any,
) -> pd.DataFrame:
    """The partitions' forecasts as one process gives them: the sown fields in ``fields``
    order, then those still to sow in ``fields`` order; the same column types."""
    # A partition with no sown field starts from an empty feature frame, whose id
    # columns are untyped (object); one process always has sown fields (the chain
    # requires some in progress), so the types of a partition that had some are right.
    typed = [part for part, has in zip(parts, had_sown, strict=True) if has and len(part)]
    reference = typed[0].dtypes.to_dict() if typed else None
    kept = []
    for part, has in zip(parts, had_sown, strict=True):
        if not len(part):
            continue
        kept.append(part if has or reference is None else part.astype(reference))
    if not kept:
        return parts[0].iloc[0:0].reset_index(drop=True)
    joined = pd.concat(kept, ignore_index=True)
    keys = pd.MultiIndex.from_frame(fields.loc[:, list(_ROW_KEY)])
    position = pd.Series(range(len(fields)), index=keys)
    # Sown fields first, each group in its order in ``fields``.
    rank = position + (~pd.Series(sown, index=keys)).astype(int) * len(fields)
    joined_keys = pd.MultiIndex.from_frame(joined.loc[:, list(_ROW_KEY)])
    order = rank.reindex(joined_keys).to_numpy().argsort(kind="stable")
    return joined.iloc[order].reset_index(drop=True)


def engine_for(
    address: str | None, store_settings: Settings | None = None
) -> DaskForecastEngine | None:
    """The engine for a configured cluster address (``local`` or ``tcp://...``); None (this
    process) when unset or empty. ``store_settings``: the settings its workers open the
    telemetry store with (:attr:`DaskForecastEngine.reads_telemetry`)."""
    if not address:
        return None
    if address != LOCAL and "://" not in address:
        raise ValueError(
            f"a forecast cluster is 'local' or a Dask scheduler address like "
            f"tcp://host:8786, not {address!r}"
        )
    return DaskForecastEngine(address, store_settings=store_settings)
