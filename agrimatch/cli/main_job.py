"""The main job, ``agrimatch demo``: the whole loop on the embedded default.

1. the scenario's past seasons backfilled (telemetry and demand to the store,
   truth and campaign history to the registry) — once per data dir;
2. its live fleet through MQTT and ingest into the store, checked reading by
   reading (:func:`agrimatch.cli.demo.run_demo`), on a simulated clock that
   starts the day before the forecast date;
3. the forecast job as of that date: yield model trained and stored, fields
   forecast, demand forecast, balance, campaigns and planting saved;
4. the API and dashboard served on a free local port, with an admin key made
   for the demo, until the time given runs out or Ctrl-C.

This module wires services (it is part of the composition root); what each
step does lives in the services it calls.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console

from agrimatch.cli.demo import DemoOptions, DemoSummary, run_demo
from agrimatch.cli.wiring import open_forecast_service
from agrimatch.scenario import Scenario
from agrimatch.settings import Settings
from forecasting.results import ForecastResults

_CHINA = ZoneInfo("Asia/Shanghai")
DEMO_KEY_NAME = "demo"


@dataclass(frozen=True, slots=True)
class MainJobOptions:
    """What the main job does; see the ``demo`` command for each option's meaning."""

    scenario: Scenario
    seasons: int = 3
    fleet_seconds: float = 20.0
    speed: float = 60.0
    realism: bool = True
    garbage: int = 3
    as_of: date | None = None  # None: 15 April of the last backfilled season
    serve_seconds: float | None = None  # None: until stopped
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port


@dataclass(frozen=True, slots=True)
class BackfillDone:
    """The history the loop forecasts from: backfilled now, or found in the data dir."""

    years: tuple[int, ...]
    field_seasons: int
    reused: bool


@dataclass(frozen=True, slots=True)
class MainJobResult:
    """What the loop did and found, for the summary."""

    history: BackfillDone
    telemetry: DemoSummary
    results: ForecastResults


def default_as_of(scenario: Scenario, seasons: int) -> date:
    """15 April of the last backfilled season: its garlic two months from harvest, its
    maize and tomato still to be sown — the moment the default world is built to show."""
    return date(scenario.first_season + seasons - 1, 4, 15)


def run_main_job(
    settings: Settings,
    options: MainJobOptions,
    console: Console,
    stage: Callable[[str], None],
) -> MainJobResult:
    """Steps 1–3: history, live telemetry, forecast; ``stage`` hears each step start."""
    as_of = options.as_of or default_as_of(options.scenario, options.seasons)
    stage(f"history: {options.seasons} past seasons of {options.scenario.name}")
    history = ensure_history(settings, options)
    stage("live fleet → MQTT → ingest → store")
    # The day before the forecast date, mid-morning in China: what the fleet sends now
    # is the newest telemetry the forecast reads.
    start = datetime.combine(as_of - timedelta(days=1), datetime.min.time(), _CHINA)
    telemetry = run_demo(
        settings,
        DemoOptions(
            duration_s=options.fleet_seconds,
            speed=options.speed,
            scenario=options.scenario,
            realism=options.realism,
            garbage=options.garbage,
            sim_start=(start + timedelta(hours=10)).astimezone(UTC).timestamp(),
        ),
        console,
    )
    service = open_forecast_service(settings)
    try:
        run = service.run_forecast(as_of, stage)
        results = service.results(as_of) if run.ok else None
    finally:
        service.store.close()
    if results is None:
        raise MainJobError(f"the forecast as of {as_of} failed: {run.run.error}")
    return MainJobResult(history, telemetry, results)


class MainJobError(RuntimeError):
    """A step of the main job could not be done; the message says which and why."""


def ensure_history(settings: Settings, options: MainJobOptions) -> BackfillDone:
    """The scenario's past seasons in the data dir: backfilled unless a marker says a
    backfill of the same scenario and seasons finished there before."""
    from agrimatch.cli.wiring import open_configured_store, open_registry
    from firmware_sim.backfill import BackfillOptions, StoreSink, backfill

    marker = settings.data_dir / f"history-{options.scenario.name}-{options.seasons}.json"
    if marker.exists():
        done = json.loads(marker.read_text())
        return BackfillDone(tuple(done["years"]), int(done["field_seasons"]), reused=True)
    store = open_configured_store(settings)
    sessions = open_registry(settings)
    try:
        report = backfill(
            options.scenario,
            store,
            sessions,
            StoreSink(store),
            # Six-hourly history without device faults: enough for the models, ~20 s.
            BackfillOptions(seasons=options.seasons, interval_s=21600.0, realism=False),
        )
    finally:
        store.close()
    marker.write_text(json.dumps({"years": report.years, "field_seasons": report.field_seasons}))
    return BackfillDone(tuple(report.years), report.field_seasons, reused=False)


@dataclass(frozen=True, slots=True)
class Served:
    """The running API: where it listens and the key made for the demo."""

    url: str
    key: str


@contextmanager
def serve_api(settings: Settings, host: str, port: int) -> Iterator[Served]:
    """The API and dashboard under uvicorn in a thread, on ``host:port`` (0: a free
    port), with an admin key for the demo (a new one each run; older demo keys revoked)."""
    import uvicorn

    from agrimatch.auth import create_key, list_keys, pepper, revoke_key
    from agrimatch.cli.wiring import open_registry
    from api import create_app

    sessions = open_registry(settings)
    with sessions.begin() as session:
        for old in list_keys(session, include_revoked=False):
            if old.name == DEMO_KEY_NAME:
                revoke_key(session, old.id)
        _, token = create_key(session, name=DEMO_KEY_NAME, role="admin", pepper=pepper(settings))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    bound = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), log_config=None, log_level="warning", server_header=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="api", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise MainJobError(f"the API did not start on {host}:{bound}")
            time.sleep(0.05)
        yield Served(f"http://{host}:{bound}", token)
    finally:
        server.should_exit = True
        thread.join(15)
        listener.close()
