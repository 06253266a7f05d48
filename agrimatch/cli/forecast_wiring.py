"""Builds the forecast job and the scheduled jobs for the CLI (``forecast``, ``scheduler``)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session, sessionmaker

from agrimatch.registry.models import JobRun, JobStatus
from agrimatch.registry.repository import list_seasons
from agrimatch.settings import Settings
from agrimatch.store import TelemetryStore
from forecasting.chain import (
    ChainOptions,
    ChainResult,
    run_chain,
    save_results,
    seasons_frame,
    split_seasons,
    training_set,
)
from forecasting.features import FEATURE_COLUMNS, HISTORY_COLUMNS, field_features
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.jobs import FORECAST, REFRESH_FEATURES, RETRAIN, JobSpec, default_job_triggers
from forecasting.metrics import quantile_metrics
from forecasting.model_store import save_model
from forecasting.telemetry_frames import daily_field_frame
from forecasting.yield_model import YieldQuantileModel


def run_forecast_job(
    settings: Settings, store: TelemetryStore, sessions: sessionmaker[Session], as_of: date
) -> tuple[JobRun, ChainResult | None]:
    """Run the forecast chain as of ``as_of`` as a recorded job; save its results."""
    started = datetime.now(UTC)
    result: ChainResult | None = None
    with sessions.begin() as session:
        run = JobRun(job="forecast", as_of=as_of, started_at=started, status="running")
        session.add(run)
    try:
        with sessions.begin() as session:
            result = run_chain(store, session, as_of, model_dir=settings.data_dir / "models")
            save_results(session, run.id, result)
        status: JobStatus = "ok"
        error: str | None = None
    except Exception as exc:  # recorded, not hidden: the run row says what failed
        logging.getLogger(__name__).exception("forecast as of %s failed", as_of)
        status, error, result = "failed", f"{type(exc).__name__}: {exc}", None
    with sessions.begin() as session:
        row = session.get(JobRun, run.id)
        assert row is not None
        row.status = status
        row.error = error
        row.ended_at = datetime.now(UTC)
        if result is not None:
            row.model_version = result.model_version
            row.metrics_json = json.dumps(result.metrics)
        session.flush()
        session.expunge(row)
    return row, result


def scheduler_jobs(
    settings: Settings, store: TelemetryStore, sessions: sessionmaker[Session]
) -> list[JobSpec]:
    """The scheduled jobs: refresh features (daily), retrain (weekly), forecast (daily)."""
    triggers = default_job_triggers()
    lookback_ms = 400 * 86_400_000

    def refresh_features(as_of: date) -> dict[str, float | str]:
        with sessions() as session:
            seasons = seasons_frame(list_seasons(session))
        history, current = split_seasons(seasons, as_of)
        end_ms = int(datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp() * 1000)
        daily = daily_field_frame(store, end_ms - lookback_ms, end_ms)
        features = field_features(
            daily,
            current[list(FIELD_SEASON_COLUMNS)],
            as_of,
            history=history[list(HISTORY_COLUMNS)],
        )
        coverage = float(features["data_coverage"].mean()) if len(features) else 0.0
        return {"fields": float(len(features)), "data_coverage_mean": coverage}

    def retrain(as_of: date) -> dict[str, float | str]:
        with sessions() as session:
            seasons = seasons_frame(list_seasons(session))
        history, _ = split_seasons(seasons, as_of)
        end_ms = int(datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp() * 1000)
        daily = daily_field_frame(store, end_ms - 4 * 365 * 86_400_000, end_ms)
        X, y = training_set(daily, history, ChainOptions().training_leads_days)
        if X.empty:
            raise ValueError(f"no harvested season to train on as of {as_of}")
        model = YieldQuantileModel(feature_columns=FEATURE_COLUMNS).fit(X, y)
        metrics = quantile_metrics(y.to_numpy(), model.predict_quantiles(X))
        manifest = save_model(model, settings.data_dir / "models", metrics=metrics)
        return {"model_version": manifest.version, "training_rows": float(len(X))}

    def forecast(as_of: date) -> dict[str, float | str]:
        run, result = run_forecast_job(settings, store, sessions, as_of)
        if result is None:
            raise RuntimeError(run.error or "forecast failed")
        return {"forecast_run": float(run.id), **result.metrics}

    return [
        JobSpec(REFRESH_FEATURES, triggers[REFRESH_FEATURES], refresh_features),
        JobSpec(RETRAIN, triggers[RETRAIN], retrain),
        JobSpec(FORECAST, triggers[FORECAST], forecast),
    ]
