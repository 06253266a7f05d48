"""Scheduled jobs: when they run (APScheduler 3.x) and what each run left behind (``JobRun``).

This module knows nothing of what a job does. The composition root (``agrimatch
scheduler``) passes each job's function, which takes the as-of date and the id
of the run it is recorded as (what it saves refers to that run) and returns
its metrics (and optionally ``"model_version"``); here every call becomes one
``job_runs`` row: started, ended, ok or failed, metrics or error.

The schedule itself lives in the registry database (APScheduler's
``SQLAlchemyJobStore``, table ``apscheduler_jobs``), so a restarted scheduler
finds its jobs and their next run times, and makes up a run it missed while
down (within :data:`MISFIRE_GRACE_S`, several missed runs coalesced into one).

A persistent job store can only hold a job's callable as a textual reference
("module:function") plus pickled arguments, never a closure. So every stored
job calls :func:`run_registered_job` with the job's name, and that looks the
function up in a module-level registry that :func:`build_scheduler` fills.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from traceback import format_exc
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.registry.models import JobRun
from agrimatch.settings import SECRET_MASK
from forecasting.errors import JobCannotRun

logger = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
JOBSTORE_ALIAS = "default"
# A run missed by up to an hour (scheduler restarting, machine asleep) still runs;
# a longer outage skips to the next regular run instead of firing stale work.
MISFIRE_GRACE_S = 3600
MAX_ERROR_CHARS = 2000

REFRESH_FEATURES = "refresh-features"
FORECAST = "forecast"  # forecast + balance + recommend, one job so they share an as-of date
RETRAIN = "retrain"

Metrics = Mapping[str, float | str]
JobFunc = Callable[[date, int], Metrics]  # (as-of date, run id) -> metrics


@dataclass(frozen=True)
class Cron:
    """A cron schedule, fields as APScheduler's ``CronTrigger`` takes them ("*" = every)."""

    hour: int | str
    minute: int | str = 0
    day_of_week: int | str = "*"
    day: int | str = "*"
    month: int | str = "*"


@dataclass(frozen=True)
class Interval:
    """A fixed interval between runs, in seconds (tests, demos)."""

    seconds: float


Trigger = Cron | Interval


@dataclass(frozen=True)
class JobSpec:
    """A named job: when it runs and the function that does the work."""

    name: str
    trigger: Trigger
    func: JobFunc


def default_job_triggers() -> dict[str, Trigger]:
    """The schedules ``agrimatch scheduler`` runs, by job name.

    Features are refreshed before the daily forecast reads them; the weekly
    retrain runs on Monday night, before that day's refresh and forecast.
    """
    return {
        REFRESH_FEATURES: Cron(hour=2, minute=0),
        FORECAST: Cron(hour=3, minute=0),
        RETRAIN: Cron(hour=1, minute=0, day_of_week="mon"),
    }


def record_run(sessions: sessionmaker[Session], job: str, as_of: date, func: JobFunc) -> JobRun:
    """Run ``func(as_of, run_id)`` and record it as one ``JobRun``; return that row (detached).

    The row is committed as ``running`` before the work starts, so a run in
    progress (or one whose process died) is visible. An exception from
    ``func`` ends the run ``failed`` with the exception's type and message
    (URL passwords masked); so does the log, with the traceback unless it is
    a :class:`JobCannotRun`, whose message says it all. It does not
    propagate: the caller, usually the scheduler, carries on. Errors of the
    registry database itself do propagate.
    """
    with sessions() as session:
        run = JobRun(job=job, as_of=as_of, started_at=_utc_now(), status="running")
        session.add(run)
        session.commit()
        run_id = run.id
    logger.info("job %s (as of %s) started, run %d", job, as_of, run_id)

    outcome: dict[str, Any]
    try:
        metrics = dict(func(as_of, run_id))
        model_version = metrics.pop("model_version", None)
        outcome = {
            "status": "ok",
            "metrics_json": _metrics_json(metrics),
            "model_version": None if model_version is None else str(model_version),
        }
    except Exception as exc:
        error = _describe(exc)
        # The traceback as masked text, not exc_info: a URL password in an
        # exception's message would otherwise reach the log unmasked.
        trace = "" if isinstance(exc, JobCannotRun) else "\n" + _masked(format_exc())
        logger.error("job %s (as of %s), run %d failed: %s%s", job, as_of, run_id, error, trace)
        outcome = {"status": "failed", "error": error}
    except BaseException as exc:
        # Interrupted (Ctrl-C, shutdown): say so in the row, then let it through.
        _finish(sessions, run_id, {"status": "failed", "error": _describe(exc)})
        raise

    finished = _finish(sessions, run_id, outcome)
    logger.info("job %s (as of %s), run %d: %s", job, as_of, run_id, finished.status)
    return finished


def recent_runs(
    sessions: sessionmaker[Session], job: str | None = None, limit: int = 20
) -> list[JobRun]:
    """The newest runs first, of one job or of all; rows are detached, fully loaded."""
    query = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if job is not None:
        query = query.where(JobRun.job == job)
    with sessions() as session:
        return list(session.scalars(query))


@dataclass(frozen=True)
class _RegisteredJob:
    spec: JobSpec
    sessions: sessionmaker[Session]
    clock_today: Callable[[], date]


_registry: dict[str, _RegisteredJob] = {}
_registry_lock = threading.Lock()


def run_registered_job(job_name: str) -> JobRun | None:
    """What every stored job calls: run the registered job ``job_name`` as of today.

    Never raises into the scheduler's loop: a failure of the job, of the
    registry database or an unknown name is logged (and recorded where it can
    be), and the scheduler goes on to the next run.
    """
    with _registry_lock:
        registered = _registry.get(job_name)
    if registered is None:
        logger.error("no job %r is registered in this process; run skipped", job_name)
        return None
    try:
        as_of = registered.clock_today()
        return record_run(registered.sessions, job_name, as_of, registered.spec.func)
    except Exception:
        logger.exception("job %s could not be run or recorded", job_name)
        return None


def build_scheduler(
    registry_url: str,
    jobs: Sequence[JobSpec],
    sessions: sessionmaker[Session],
    clock_today: Callable[[], date],
    *,
    blocking: bool = True,
    timezone: str | tzinfo = "UTC",
) -> BaseScheduler:
    """A scheduler (not started) whose jobs live in the registry database.

    Each job is stored under its name (a stable id) and replaces the stored job
    of that name; a stored job's next run time is kept when its schedule is
    unchanged, so a run missed while the scheduler was down still happens on
    start. Stored jobs not in ``jobs`` are removed. All jobs coalesce, run one
    instance at a time and have :data:`MISFIRE_GRACE_S` of misfire grace. Cron
    times are in ``timezone``.

    The job functions are registered in this module, for :func:`run_registered_job`;
    one process runs one scheduler (a second build replaces same-named jobs).
    """
    names = [spec.name for spec in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique: {names}")
    scheduler_type = BlockingScheduler if blocking else BackgroundScheduler
    scheduler: BaseScheduler = scheduler_type(
        jobstores={JOBSTORE_ALIAS: SQLAlchemyJobStore(url=registry_url, tablename=JOBSTORE_TABLE)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE_S,
        },
        timezone=timezone,
    )
    triggers = {spec.name: _apscheduler_trigger(spec.trigger, scheduler.timezone) for spec in jobs}
    kept_next_run = _reconcile_stored_jobs(registry_url, scheduler, triggers)

    with _registry_lock:
        for spec in jobs:
            _registry[spec.name] = _RegisteredJob(spec, sessions, clock_today)
    for spec in jobs:
        extra: dict[str, Any] = {}
        if spec.name in kept_next_run:
            extra["next_run_time"] = kept_next_run[spec.name]
        scheduler.add_job(
            run_registered_job,
            trigger=triggers[spec.name],
            args=[spec.name],
            id=spec.name,
            name=spec.name,
            jobstore=JOBSTORE_ALIAS,
            replace_existing=True,
            **extra,
        )
    return scheduler


def _reconcile_stored_jobs(
    registry_url: str, scheduler: BaseScheduler, triggers: Mapping[str, BaseTrigger]
) -> dict[str, datetime | None]:
    # replace_existing alone would recompute every next run time from "now" and
    # so drop a run missed during a restart; keep the stored time instead when
    # the schedule has not changed. A throwaway store reads the table, since the
    # scheduler's own store only opens on start().
    store = SQLAlchemyJobStore(url=registry_url, tablename=JOBSTORE_TABLE)
    try:
        store.start(scheduler, JOBSTORE_ALIAS)
        kept: dict[str, datetime | None] = {}
        for stored in store.get_all_jobs():
            trigger = triggers.get(stored.id)
            if trigger is None:
                logger.info("removing stored job %r: no longer scheduled", stored.id)
                store.remove_job(stored.id)
            elif _trigger_key(stored.trigger) == _trigger_key(trigger):
                kept[stored.id] = stored.next_run_time
        return kept
    finally:
        store.shutdown()


def _apscheduler_trigger(trigger: Trigger, timezone: tzinfo) -> BaseTrigger:
    if isinstance(trigger, Cron):
        return CronTrigger(
            month=trigger.month,
            day=trigger.day,
            day_of_week=trigger.day_of_week,
            hour=trigger.hour,
            minute=trigger.minute,
            timezone=timezone,
        )
    return IntervalTrigger(seconds=trigger.seconds, timezone=timezone)


def _trigger_key(trigger: BaseTrigger) -> str:
    # str() names the schedule without an interval trigger's start date (which is "now").
    return f"{type(trigger).__name__} {trigger} {getattr(trigger, 'timezone', '')}"


def _finish(sessions: sessionmaker[Session], run_id: int, outcome: Mapping[str, Any]) -> JobRun:
    # One UPDATE, no read before it: on SQLite a transaction that reads and then
    # writes fails at once (SQLITE_BUSY, no waiting) if another writer, such as
    # the job store saving a next run time, committed in between.
    with sessions() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(ended_at=_utc_now(), **outcome)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return session.get_one(JobRun, run_id)


def _metrics_json(metrics: Mapping[str, Any]) -> str:
    clean: dict[str, float | str | None] = {}
    for key, value in metrics.items():
        if isinstance(value, bool | int | float):
            # JSON has no NaN or infinity; a metric that could not be computed is null.
            clean[str(key)] = float(value) if math.isfinite(value) else None
        elif isinstance(value, str):
            clean[str(key)] = value
        else:
            raise TypeError(f"metric {key!r} is a {type(value).__name__}, not a number or text")
    return json.dumps(clean, sort_keys=True, allow_nan=False)


_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)[^@\s]+@")


def _describe(exc: BaseException) -> str:
    text = _masked(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _masked(text: str) -> str:
    # Drivers and HTTP clients put URLs in their messages; a URL may carry a password.
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{SECRET_MASK}@", text)


def _utc_now() -> datetime:
    return datetime.now(UTC)
