"""Scheduled jobs: every run recorded, the schedule kept in the registry across restarts."""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.registry.db import make_engine, migrate, session_factory
from forecasting.jobs import (
    FORECAST,
    MISFIRE_GRACE_S,
    REFRESH_FEATURES,
    RETRAIN,
    Cron,
    Interval,
    JobCannotRun,
    JobSpec,
    build_scheduler,
    default_job_triggers,
    recent_runs,
    record_run,
    run_registered_job,
)

AS_OF = date(2024, 6, 1)
WAIT_S = 10.0


@pytest.fixture
def registry_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.sqlite3'}"


@pytest.fixture
def engine(registry_url: str) -> Iterator[Engine]:
    engine = make_engine(registry_url)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def _today() -> date:
    return AS_OF


def _ok(as_of: date, run_id: int) -> dict[str, float | str]:
    return {"mae_t_ha": 0.42, "fields": 12}


def _fail(as_of: date, run_id: int) -> dict[str, float | str]:
    raise RuntimeError("cannot reach postgresql://agri:hunter2@db:5432/registry")


def _default_specs() -> list[JobSpec]:
    return [JobSpec(name, trigger, _ok) for name, trigger in default_job_triggers().items()]


def _wait_for(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _set_stored_next_run_time(engine: Engine, job_id: str, at: datetime) -> None:
    # Written straight into the table, as if the scheduler had been down at that
    # time: a running scheduler would act on the change (even while shutting down).
    with engine.begin() as connection:
        blob = connection.execute(
            text("SELECT job_state FROM apscheduler_jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
        state = pickle.loads(blob)
        state["next_run_time"] = at
        connection.execute(
            text(
                "UPDATE apscheduler_jobs SET next_run_time = :ts, job_state = :state WHERE id = :id"
            ),
            {"ts": at.timestamp(), "state": pickle.dumps(state), "id": job_id},
        )


def test_a_successful_run_is_recorded_ok_with_metrics_and_times(
    sessions: sessionmaker[Session],
) -> None:
    run = record_run(sessions, FORECAST, AS_OF, _ok)

    [stored] = recent_runs(sessions)
    assert stored.id == run.id
    assert (stored.job, stored.as_of, stored.status) == (FORECAST, AS_OF, "ok")
    assert json.loads(stored.metrics_json or "") == {"mae_t_ha": 0.42, "fields": 12.0}
    assert stored.ended_at is not None
    assert stored.started_at <= stored.ended_at
    assert stored.error is None


def test_the_model_version_goes_to_its_own_column(sessions: sessionmaker[Session]) -> None:
    run = record_run(
        sessions, RETRAIN, AS_OF, lambda *_: {"model_version": "yield-maize-2023-1a2b3c4d", "n": 3}
    )

    assert run.model_version == "yield-maize-2023-1a2b3c4d"
    assert json.loads(run.metrics_json or "") == {"n": 3.0}


def test_a_metric_that_is_not_finite_is_recorded_as_null(sessions: sessionmaker[Session]) -> None:
    run = record_run(sessions, FORECAST, AS_OF, lambda *_: {"mape": float("nan")})

    assert run.status == "ok"
    assert json.loads(run.metrics_json or "") == {"mape": None}


def test_a_failing_job_is_recorded_failed_with_the_error_and_does_not_raise(
    sessions: sessionmaker[Session],
) -> None:
    run = record_run(sessions, REFRESH_FEATURES, AS_OF, _fail)

    assert run.status == "failed"
    assert run.ended_at is not None
    assert run.metrics_json is None
    assert run.error is not None
    assert run.error.startswith("RuntimeError: cannot reach postgresql://agri:")


def test_a_failed_run_keeps_no_password_from_the_error(sessions: sessionmaker[Session]) -> None:
    run = record_run(sessions, REFRESH_FEATURES, AS_OF, _fail)

    assert run.error is not None
    assert "hunter2" not in run.error
    assert "agri:********@db:5432" in run.error


def test_the_job_is_told_the_id_of_the_run_it_is_recorded_as(
    sessions: sessionmaker[Session],
) -> None:
    told: list[int] = []

    def job(as_of: date, run_id: int) -> dict[str, float | str]:
        told.append(run_id)
        return {}

    first = record_run(sessions, FORECAST, AS_OF, job)
    second = record_run(sessions, FORECAST, AS_OF, job)

    assert told == [first.id, second.id] and first.id != second.id


def test_a_job_that_cannot_run_is_logged_without_a_traceback_others_with_a_masked_one(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    def too_early(as_of: date, run_id: int) -> dict[str, float | str]:
        raise JobCannotRun(f"as of {as_of} nothing has been harvested yet")

    cannot = record_run(sessions, FORECAST, AS_OF, too_early)
    record_run(sessions, REFRESH_FEATURES, AS_OF, _fail)

    assert cannot.status == "failed"
    assert cannot.error == "JobCannotRun: as of 2024-06-01 nothing has been harvested yet"
    [said_cannot, said_broken] = [r.getMessage() for r in caplog.records if "failed" in r.msg]
    assert "nothing has been harvested" in said_cannot and "Traceback" not in said_cannot
    assert "Traceback" in said_broken and "in _fail" in said_broken
    assert "hunter2" not in caplog.text and "agri:********@db" in said_broken
    assert all(r.exc_info is None for r in caplog.records)


def test_recent_runs_are_newest_first_and_filter_by_job(sessions: sessionmaker[Session]) -> None:
    first = record_run(sessions, FORECAST, AS_OF, _ok)
    record_run(sessions, RETRAIN, AS_OF, _ok)
    last = record_run(sessions, FORECAST, AS_OF, _ok)

    assert [run.id for run in recent_runs(sessions, FORECAST)] == [last.id, first.id]
    assert len(recent_runs(sessions, limit=2)) == 2


def test_an_unknown_job_name_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    assert run_registered_job("no-such-job") is None
    assert "no-such-job" in caplog.text


def test_the_default_jobs_refresh_daily_forecast_daily_and_retrain_weekly() -> None:
    assert default_job_triggers() == {
        REFRESH_FEATURES: Cron(hour=2, minute=0),
        FORECAST: Cron(hour=3, minute=0),
        RETRAIN: Cron(hour=1, minute=0, day_of_week="mon"),
    }


def test_stored_jobs_coalesce_run_one_instance_and_have_an_hour_of_grace(
    registry_url: str, sessions: sessionmaker[Session]
) -> None:
    scheduler = build_scheduler(registry_url, _default_specs(), sessions, _today, blocking=False)
    scheduler.start(paused=True)
    try:
        jobs = scheduler.get_jobs()
    finally:
        scheduler.shutdown()

    assert sorted(job.id for job in jobs) == sorted(default_job_triggers())
    for job in jobs:
        assert job.coalesce is True
        assert job.max_instances == 1
        assert job.misfire_grace_time == MISFIRE_GRACE_S == 3600
        assert job.func is run_registered_job
        assert job.args == (job.id,)


def test_the_job_store_survives_a_scheduler_restart(
    registry_url: str, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    first = build_scheduler(registry_url, _default_specs(), sessions, _today, blocking=False)
    first.start()
    try:
        before = {job.id: job.next_run_time for job in first.get_jobs()}
    finally:
        first.shutdown()

    second = build_scheduler(registry_url, _default_specs(), sessions, _today, blocking=False)
    second.start(paused=True)
    try:
        after = {job.id: job.next_run_time for job in second.get_jobs()}
    finally:
        second.shutdown()

    assert set(before) == {REFRESH_FEATURES, FORECAST, RETRAIN}
    assert after == before
    assert all(next_run is not None for next_run in after.values())
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM apscheduler_jobs")).scalar() == 3


def test_a_run_missed_while_the_scheduler_was_down_runs_on_restart(
    registry_url: str, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    specs = [JobSpec(FORECAST, Interval(seconds=3600), _ok)]
    first = build_scheduler(registry_url, specs, sessions, _today, blocking=False)
    first.start(paused=True)
    first.shutdown()
    _set_stored_next_run_time(engine, FORECAST, datetime.now(UTC) - timedelta(minutes=5))

    second = build_scheduler(registry_url, specs, sessions, _today, blocking=False)
    second.start()
    try:
        assert _wait_for(lambda: len(recent_runs(sessions, FORECAST)) == 1)
    finally:
        second.shutdown()


def test_a_changed_schedule_replaces_the_stored_next_run_time(
    registry_url: str, sessions: sessionmaker[Session]
) -> None:
    first = build_scheduler(
        registry_url,
        [JobSpec(RETRAIN, Interval(seconds=3600), _ok)],
        sessions,
        _today,
        blocking=False,
    )
    first.start(paused=True)
    first.shutdown()

    second = build_scheduler(
        registry_url,
        [JobSpec(RETRAIN, Interval(seconds=60), _ok)],
        sessions,
        _today,
        blocking=False,
    )
    second.start(paused=True)
    try:
        [job] = second.get_jobs()
    finally:
        second.shutdown()

    assert job.trigger.interval == timedelta(seconds=60)
    assert job.next_run_time - datetime.now(UTC) < timedelta(seconds=61)


def test_a_job_no_longer_scheduled_is_removed_from_the_store(
    registry_url: str, sessions: sessionmaker[Session]
) -> None:
    first = build_scheduler(registry_url, _default_specs(), sessions, _today, blocking=False)
    first.start(paused=True)
    first.shutdown()

    specs = [JobSpec(FORECAST, default_job_triggers()[FORECAST], _ok)]
    second = build_scheduler(registry_url, specs, sessions, _today, blocking=False)
    second.start(paused=True)
    try:
        assert [job.id for job in second.get_jobs()] == [FORECAST]
    finally:
        second.shutdown()


def test_an_interval_job_runs_in_a_background_scheduler_and_is_recorded(
    registry_url: str, sessions: sessionmaker[Session]
) -> None:
    specs = [JobSpec(FORECAST, Interval(seconds=0.3), _ok)]
    scheduler = build_scheduler(registry_url, specs, sessions, _today, blocking=False)
    scheduler.start()
    try:
        assert _wait_for(lambda: any(r.status == "ok" for r in recent_runs(sessions, FORECAST)))
    finally:
        scheduler.shutdown()

    run = recent_runs(sessions, FORECAST)[-1]
    assert (run.status, run.as_of) == ("ok", AS_OF)
    assert json.loads(run.metrics_json or "") == {"mae_t_ha": 0.42, "fields": 12.0}


def test_a_failing_job_does_not_stop_the_scheduler(
    registry_url: str, sessions: sessionmaker[Session]
) -> None:
    specs = [
        JobSpec(REFRESH_FEATURES, Interval(seconds=0.3), _fail),
        JobSpec(FORECAST, Interval(seconds=0.3), _ok),
    ]
    scheduler = build_scheduler(registry_url, specs, sessions, _today, blocking=False)
    scheduler.start()
    try:
        assert _wait_for(lambda: len(recent_runs(sessions, REFRESH_FEATURES)) >= 2)
        assert _wait_for(lambda: len(recent_runs(sessions, FORECAST)) >= 2)
        assert scheduler.running
        assert scheduler.get_job(REFRESH_FEATURES) is not None
    finally:
        scheduler.shutdown()

    failed = recent_runs(sessions, REFRESH_FEATURES)
    assert {run.status for run in failed} == {"failed"}
    assert all((run.error or "").startswith("RuntimeError: ") for run in failed)
    assert {run.status for run in recent_runs(sessions, FORECAST)} == {"ok"}
