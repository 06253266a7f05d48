"""Builds the forecast job, the what-if and the scheduled jobs for the CLI (``forecast``,
``scheduler``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agrimatch.registry.models import JobRun
from agrimatch.settings import Settings
from agrimatch.store import TelemetryStore
from forecasting.chain import (
    ChainOptions,
    ChainResult,
    current_yield_model,
    forecast_as_of,
    run_chain,
    save_results,
    train_yield_model,
)
from forecasting.chain_data import ChainData, load_chain_data, split_seasons
from forecasting.chain_whatif import chain_what_if
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
from forecasting.whatif import PlanChange, WhatIf


def run_forecast_job(
    settings: Settings, store: TelemetryStore, sessions: sessionmaker[Session], as_of: date
) -> tuple[JobRun, ChainResult | None]:
    """Run the forecast chain as of ``as_of`` as a recorded job; its results saved with it."""
    results: list[ChainResult] = []
    run = record_run(sessions, FORECAST, as_of, forecast_job(settings, store, sessions, results))
    return run, (results[0] if run.status == "ok" and results else None)


def forecast_job(
    settings: Settings,
    store: TelemetryStore,
    sessions: sessionmaker[Session],
    results: list[ChainResult] | None = None,
) -> JobFunc:
    """The forecast job: the chain as of the run's date, its forecasts and recommendations
    saved under the run in the same transaction; each result also appended to ``results``."""

    def forecast(as_of: date, run_id: int) -> Metrics:
        with sessions.begin() as session:
            result = run_chain(store, session, as_of, model_dir=settings.data_dir / "models")
            save_results(session, run_id, result)
        if results is not None:
            results.append(result)
        return {"model_version": result.model_version, **result.metrics}

    return forecast


def scheduler_jobs(
    settings: Settings, store: TelemetryStore, sessions: sessionmaker[Session]
) -> list[JobSpec]:
    """The scheduled jobs: refresh features (daily), retrain (weekly), forecast (daily)."""
    triggers = default_job_triggers()
    options = ChainOptions()
    models = settings.data_dir / "models"

    def load(as_of: date) -> ChainData:
        with sessions() as session:
            first = as_of - timedelta(days=options.history_days)
            return load_chain_data(store, session, first, as_of)

    def refresh_features(as_of: date, _run_id: int) -> Metrics:
        data = load(as_of)
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
        trained = train_yield_model(load(as_of), as_of, options, models)
        return {"model_version": trained.version, **trained.metrics}

    return [
        JobSpec(REFRESH_FEATURES, triggers[REFRESH_FEATURES], refresh_features),
        JobSpec(RETRAIN, triggers[RETRAIN], retrain),
        JobSpec(FORECAST, triggers[FORECAST], forecast_job(settings, store, sessions)),
    ]


def run_what_if(
    settings: Settings,
    store: TelemetryStore,
    sessions: sessionmaker[Session],
    as_of: date,
    change: PlanChange,
) -> WhatIf:
    """The chain as of ``as_of`` for the current plan and for it with ``change``; not saved.

    Uses the stored yield model for the seasons known on ``as_of`` (training
    and storing one if there is none, as the forecast job does).
    """
    options = ChainOptions()
    with sessions() as session:
        first = as_of - timedelta(days=options.history_days)
        data = load_chain_data(store, session, first, as_of)
    trained = current_yield_model(data, as_of, settings.data_dir / "models", options)
    baseline = forecast_as_of(data, as_of, trained, options)
    return chain_what_if(data, as_of, trained, baseline, change)


def parse_pairs(values: list[str], kind: type[float] | type[int], what: str) -> dict[str, Any]:
    """``["garlic=0.8", ...]`` -> ``{"garlic": 0.8}``; a clear error for anything else."""
    pairs: dict[str, Any] = {}
    for value in values:
        crop, sep, number = value.partition("=")
        try:
            if not sep or not crop:
                raise ValueError
            pairs[crop.strip()] = kind(number)
        except ValueError:
            raise ValueError(f"{what} takes CROP=NUMBER, not {value!r}") from None
    return pairs
