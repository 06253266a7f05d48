"""The application services: what the CLI, the scheduler and the API all call.

A :class:`ForecastService` is given the telemetry store, a registry session
factory and the model directory (never the settings), and offers the use
cases of the forecasting side: run the forecast as a recorded job and save
its results, read results back, run a what-if, and the scheduled jobs. Entry
points parse their input, call one of these and present what it returns.

Every use case checks what it was asked before any model runs: a crop that
is not in the plan, a weather scenario that does not exist or a registry
with nothing to forecast fails in a second, with the fix in the message.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.registry.models import JobRun
from agrimatch.registry.repository import find_fields, list_seasons
from agrimatch.store import TelemetryStore
from forecasting.chain import (
    ChainOptions,
    ChainResult,
    Progress,
    check_forecastable,
    current_yield_model,
    forecast_as_of,
    no_progress,
    run_chain,
    train_yield_model,
)
from forecasting.chain_data import (
    ChainData,
    load_chain_data,
    plans_frame,
    seasons_frame,
    seasons_to_forecast,
    split_seasons,
)
from forecasting.chain_whatif import chain_what_if, weather_shift
from forecasting.errors import InvalidRequest
from forecasting.features import field_features, recorded_history
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.jobs import (
    FORECAST,
    REFRESH_FEATURES,
    RETRAIN,
    JobFunc,
    JobSpec,
    Metrics,
    default_job_triggers,
    record_run,
)
from forecasting.results import ForecastResults, find_run, read_results, save_results
from forecasting.whatif import PlanChange, WhatIf, apply_plan_change


@dataclass(frozen=True, slots=True)
class ForecastRun:
    """A forecast job's recorded run, and what it found when it succeeded."""

    run: JobRun
    result: ChainResult | None  # None when the run failed (run.error says why)

    @property
    def ok(self) -> bool:
        """Whether the run succeeded and its results are saved."""
        return self.run.status == "ok" and self.result is not None


@dataclass(frozen=True, slots=True, eq=False)
class ForecastService:
    """The forecasting use cases over one store, registry and model directory."""

    store: TelemetryStore
    sessions: sessionmaker[Session]
    model_dir: Path
    options: ChainOptions = field(default_factory=ChainOptions)
    # A run's stored results never change (a rerun stores under a new run id), so
    # they are read once per run: the API serves them many times a second.
    _read: _RunCache = field(default_factory=lambda: _RunCache(8), repr=False)

    # --- write side -------------------------------------------------------------------

    def check_forecast(self, as_of: date) -> None:
        """Raise :class:`~forecasting.errors.ChainError` naming the fix when the registry
        alone shows that a forecast as of ``as_of`` cannot run. Reads no telemetry."""
        check_forecastable(self._seasons(), as_of, self.options, self._plans())

    def run_forecast(self, as_of: date, progress: Progress | None = None) -> ForecastRun:
        """The forecast chain as of ``as_of`` as a recorded job, its results saved with it
        (a rerun for the same date and model replaces them)."""
        results: list[ChainResult] = []
        run = record_run(self.sessions, FORECAST, as_of, self._forecast_job(results, progress))
        return ForecastRun(run, results[0] if run.status == "ok" and results else None)

    def what_if(self, as_of: date, change: PlanChange, progress: Progress | None = None) -> WhatIf:
        """The outlook as of ``as_of`` for the current plan and for it with ``change``;
        nothing saved. With no change, the changed outlook is the forecast run's own."""
        self.check_plan_change(as_of, change)
        report = progress or no_progress
        report("loading telemetry and demand")
        data = self.load(as_of)
        report("yield model")
        trained = current_yield_model(data, as_of, self.model_dir, self.options)
        baseline = forecast_as_of(data, as_of, trained, self.options, progress)
        report("what-if")
        return chain_what_if(data, as_of, trained, baseline, change)

    def check_plan_change(self, as_of: date, change: PlanChange) -> None:
        """Raise :class:`InvalidRequest` (or :class:`ChainError`) when ``change`` does not fit
        the plan as of ``as_of`` (a crop no field grows, an unknown field or weather)."""
        if change.weather is not None:
            weather_shift(change.weather)
        seasons, plans = self._seasons(), self._plans()
        check_forecastable(seasons, as_of, self.options, plans)
        plan = seasons_to_forecast(seasons, plans, as_of)
        try:
            apply_plan_change(plan[list(FIELD_SEASON_COLUMNS)], change)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def scheduled_jobs(self) -> list[JobSpec]:
        """The scheduled jobs: refresh features (daily), retrain (weekly), forecast (daily)."""
        triggers = default_job_triggers()

        def refresh_features(as_of: date, _run_id: int) -> Metrics:
            data = self.load(as_of)
            history, current = split_seasons(data.seasons, as_of)
            features = field_features(
                data.daily,
                current[list(FIELD_SEASON_COLUMNS)],
                as_of,
                history=recorded_history(data.daily, history),
            )
            coverage = float(features["data_coverage"].mean()) if len(features) else 0.0
            return {"fields": float(len(features)), "data_coverage_mean": coverage}

        def retrain(as_of: date, _run_id: int) -> Metrics:
            trained = train_yield_model(self.load(as_of), as_of, self.options, self.model_dir)
            return {"model_version": trained.version, **trained.metrics}

        return [
            JobSpec(REFRESH_FEATURES, triggers[REFRESH_FEATURES], refresh_features),
            JobSpec(RETRAIN, triggers[RETRAIN], retrain),
            JobSpec(FORECAST, triggers[FORECAST], self._forecast_job()),
        ]

    # --- read side --------------------------------------------------------------------

    def results(self, as_of: date | None = None) -> ForecastResults | None:
        """The stored results of the newest successful forecast (of ``as_of`` when given);
        None when there is none."""
        with self.sessions() as session:
            run = find_run(session, as_of)
            if run is None:
                return None
            return self._read.get(run.id, lambda: read_results(session, run))

    def load(self, as_of: date) -> ChainData:
        """What the chain reads as of ``as_of``: seasons, telemetry, demand, campaigns."""
        first = as_of - timedelta(days=self.options.history_days)
        with self.sessions() as session:
            return load_chain_data(self.store, session, first, as_of)

    # --- helpers ----------------------------------------------------------------------

    def _seasons(self) -> pd.DataFrame:
        with self.sessions() as session:
            return seasons_frame(list_seasons(session))

    def _plans(self) -> pd.DataFrame:
        with self.sessions() as session:
            return plans_frame(find_fields(session))

    def _forecast_job(
        self, results: list[ChainResult] | None = None, progress: Progress | None = None
    ) -> JobFunc:
        """The forecast job: the chain as of the run's date, its results saved under the run
        in the same transaction; each result also appended to ``results``."""

        def forecast(as_of: date, run_id: int) -> Metrics:
            with self.sessions.begin() as session:
                result = run_chain(
                    self.store,
                    session,
                    as_of,
                    model_dir=self.model_dir,
                    options=self.options,
                    progress=progress,
                )
                (progress or no_progress)("saving results")
                save_results(session, run_id, result)
            if results is not None:
                results.append(result)
            metrics: dict[str, float | str] = {"model_version": result.model_version}
            metrics.update(result.metrics)
            if result.planting_error is not None:
                metrics["planting_error"] = result.planting_error
            return metrics

        return forecast


class _RunCache:
    """The last ``size`` runs' results by run id, safe to share between threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._results: OrderedDict[int, ForecastResults] = OrderedDict()

    def get(self, run_id: int, read: Callable[[], ForecastResults]) -> ForecastResults:
        with self._lock:
            if run_id in self._results:
                self._results.move_to_end(run_id)
                return self._results[run_id]
        results = read()  # outside the lock: two first readers may both read, harmlessly
        with self._lock:
            self._results[run_id] = results
            while len(self._results) > self._size:
                self._results.popitem(last=False)
        return results
