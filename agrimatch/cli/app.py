"""Typer app: ``agrimatch demo | sim | ingest | config show``."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from agrimatch.cli.common import console, err_console, fail, settings_or_exit, setup_logging
from agrimatch.cli.devices_cmd import devices_app
from agrimatch.cli.forecast_cmd import forecast_app
from agrimatch.cli.import_cmd import import_app
from agrimatch.cli.keys_cmd import keys_app
from agrimatch.cli.serve_cmd import serve
from agrimatch.clock import make_clock

if TYPE_CHECKING:
    from agrimatch.settings import Settings
    from firmware_sim import DeviceSpec
    from ingest.mqtt_consumer import MqttIngest
    from ingest.prometheus import MetricsServer

app = typer.Typer(
    name="agrimatch",
    help="Farm telemetry in, supply forecasts and demand matching out.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

T = TypeVar("T")


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@contextmanager
def _stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per stage on stderr; yields ``report(stage, done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("[bold]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done)

        yield report


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (from AGRIMATCH_* and .env), secrets masked."""
    settings = settings_or_exit(data_dir=False)
    table = Table("setting", "variable", "value")
    for name, value in settings.masked().items():
        table.add_row(name, f"AGRIMATCH_{name.upper()}", "" if value is None else str(value))
    console.print(table)
    console.print(
        f"broker: {'embedded (amqtt)' if settings.mqtt_embedded else 'external'}; "
        f"store: {'embedded (SQLite)' if settings.influx_embedded else 'InfluxDB'}"
    )


@app.command()
def ingest(
    client_id: Annotated[
        str | None, typer.Option(help="MQTT client id (default AGRIMATCH_MQTT_CLIENT_ID)")
    ] = None,
    shared: Annotated[
        bool | None,
        typer.Option(
            help="Override AGRIMATCH_INGEST_SUBSCRIPTION: --shared for $share/ingest/... "
            "(N replicas), --no-shared for the plain subscription (one replica)"
        ),
    ] = None,
    retire: Annotated[
        bool,
        typer.Option(
            "--retire",
            help="End this client id's persistent session for good: store what it holds, "
            "then remove it from the broker (for a replica that is gone)",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Consume telemetry from the broker into the store until SIGINT/SIGTERM.

    Needs AGRIMATCH_MQTT_URL (a broker to consume from); the store is InfluxDB
    when AGRIMATCH_INFLUX_URL is set, else the embedded store in AGRIMATCH_DATA_DIR.
    Exits 1 with one line when it cannot go on: the first broker connection fails
    for AGRIMATCH_INGEST_CONNECT_TIMEOUT_S, the store refuses for good (credentials),
    or the writer fails. AGRIMATCH_INGEST_METRICS_PORT serves Prometheus metrics.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from agrimatch.cli.preflight import require_data_dir, require_influx_credentials
    from agrimatch.cli.wiring import build_ingest, open_configured_store

    setup_logging(verbose)
    settings = settings_or_exit()
    if settings.mqtt_embedded:
        err_console.print(
            "[red]error:[/] AGRIMATCH_MQTT_URL is unset: `agrimatch ingest` needs a broker "
            "(`agrimatch demo` runs an embedded one)"
        )
        raise typer.Exit(2)
    if settings.influx_embedded or (settings.ingest_check_place and settings.database_url is None):
        require_data_dir(settings)  # the embedded store, or the registry's SQLite file
    if not settings.influx_embedded:
        require_influx_credentials(settings)
    store = open_configured_store(settings)
    try:
        service = build_ingest(settings, store, client_id=client_id, shared=shared)
    except SQLAlchemyError as exc:  # only the place check opens the registry
        store.close()
        registry = settings.masked().get("database_url") or "SQLite in AGRIMATCH_DATA_DIR"
        raise fail(
            f"ingest checks each device's place in the registry and cannot open it at "
            f"{registry} ({type(exc).__name__}): start it or fix AGRIMATCH_DATABASE_URL, "
            "or set AGRIMATCH_INGEST_CHECK_PLACE=false",
            1,
        ) from None
    name = client_id or settings.mqtt_client_id
    if retire:
        try:
            report = service.retire()
        except RuntimeError as exc:
            raise fail(f"session {name!r} not retired: {exc}", 1) from None
        finally:
            store.close()
        held = "held" if report.session_present else "had no session;"
        console.print(f"session {name!r} retired: it {held} {report.messages} message(s), stored")
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    metrics_server = _ingest_metrics_or_exit(settings, service)
    try:
        failure = service.run_until(stop)
    finally:
        if metrics_server is not None:
            metrics_server.close()
        store.close()
    console.print(service.metrics.snapshot().as_dict())
    if failure is not None:
        raise fail(f"ingest stopped: {failure}", 1)
    if service.persistent:
        # Said on every stop: a session left behind takes its share of the messages.
        logging.getLogger("agrimatch.ingest").info(
            "the broker keeps session %r and its share of the messages for %d h; if this "
            "replica is gone for good: agrimatch ingest --retire --client-id %s",
            name,
            settings.ingest_session_expiry_s // 3600,
            name,
        )


def _ingest_metrics_or_exit(settings: Settings, service: MqttIngest) -> MetricsServer | None:
    """The Prometheus endpoint when AGRIMATCH_INGEST_METRICS_PORT is set; exit 2 if taken."""
    from ingest.prometheus import IngestCollector, serve_metrics

    port = settings.ingest_metrics_port
    if port is None:
        return None
    host = settings.ingest_metrics_host
    collector = IngestCollector(
        service.metrics, lambda: service.queue_depth, lambda: service.writer_alive
    )
    try:
        server = serve_metrics(collector, host, port)
    except OSError as exc:
        raise fail(
            f"AGRIMATCH_INGEST_METRICS_PORT={port}: cannot listen on {host}:{port} "
            f"({exc.strerror or exc}): pick a free port",
            2,
        ) from None
    logging.getLogger("agrimatch.ingest").info("metrics on http://%s:%d/metrics", host, port)
    return server


sim_app = typer.Typer(
    help="Simulated world: a live fleet over MQTT, or past seasons backfilled.",
    invoke_without_command=True,
)
app.add_typer(sim_app, name="sim")


ScenarioOption = Annotated[
    str | None,
    typer.Option(help="Scenario: a shipped name (default, garlic-glut, ...) or a TOML file"),
]


@sim_app.callback()
def sim(
    ctx: typer.Context,
    scenario: ScenarioOption = None,
    devices: Annotated[
        int, typer.Option(min=1, help="Without --scenario: number of sensor nodes")
    ] = 50,
    seed: Annotated[int, typer.Option(help="Without --scenario: random seed")] = 1,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Simulated seconds per real second")
    ] = 1.0,
    interval: Annotated[float, typer.Option(min=1.0, help="Sampling interval, seconds")] = 60.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many simulated seconds (default: run)")
    ] = None,
    realism: Annotated[
        bool, typer.Option(help="5G outages, sensor faults, clock drift, battery sleep")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run a simulated fleet publishing SenML telemetry to AGRIMATCH_MQTT_URL.

    With --scenario the fleet is the scenario's devices on their fields;
    `agrimatch sim backfill --help` writes past seasons instead. The simulated
    clock never runs ahead of the wall clock (ingest refuses readings from the
    future): above --speed 1 it starts --duration simulated seconds back (a day
    without --duration; AGRIMATCH_CLOCK_START overrides) and, once caught up
    with now, runs at real time. Exits 1 if the broker cannot be reached or
    packs were left undelivered.
    """
    if ctx.invoked_subcommand is not None:
        return
    from agrimatch.cli.fleet_wiring import fleet_specs, run_fleet_until
    from agrimatch.cli.preflight import require_broker
    from firmware_sim.live_clock import LiveClock, live_start

    setup_logging(verbose)
    settings = settings_or_exit()
    if settings.mqtt_embedded:
        err_console.print(
            "[red]error:[/] AGRIMATCH_MQTT_URL is unset: `agrimatch sim` needs a broker"
        )
        raise typer.Exit(2)
    specs, seed = _scenario_or_exit(lambda: fleet_specs(scenario, devices, seed, interval))
    endpoint = require_broker(settings)
    stop = threading.Event()
    _stop_on_signals(stop)
    # Before the clock starts: at --speed 600 a second of registering is 10 simulated minutes.
    _register_fleet_or_exit(settings, specs)
    start = settings.clock_start.timestamp() if settings.clock_start else None
    clock = LiveClock(live_start(speed, duration) if start is None else start, speed)
    stats = run_fleet_until(endpoint, clock, specs, seed, duration, stop, realism=realism)
    console.print(
        f"devices {stats.devices}, messages {stats.messages_sent}, readings {stats.readings_sent}"
    )
    if stats.undelivered:
        raise fail(
            f"{stats.undelivered} pack(s) never reached the broker at {endpoint.display} "
            f"(reconnects: {stats.reconnects}); is it still running?",
            1,
        )


def _register_fleet_or_exit(settings: Settings, specs: Sequence[DeviceSpec]) -> None:
    """The fleet in the registry before its first pack: ingest's place check (on by
    default) dead-letters devices the registry lacks. Exit 1 if it cannot be written."""
    from sqlalchemy.exc import SQLAlchemyError

    from agrimatch.cli.fleet_wiring import register_fleet
    from agrimatch.cli.preflight import require_data_dir
    from agrimatch.cli.wiring import open_registry

    if settings.database_url is None:
        require_data_dir(settings)
    try:
        added = register_fleet(open_registry(settings), specs)
    except SQLAlchemyError as exc:
        registry = settings.masked().get("database_url") or "SQLite in AGRIMATCH_DATA_DIR"
        raise fail(
            f"the simulator registers its devices in the registry (ingest checks their "
            f"place) and cannot write it at {registry} ({type(exc).__name__}): start it or "
            "fix AGRIMATCH_DATABASE_URL",
            1,
        ) from None
    logging.getLogger("agrimatch.sim").info(
        "registry: %d device(s), %d field(s), %d farm(s) added (the rest were there)",
        added.devices,
        added.fields,
        added.farms,
    )


def _scenario_or_exit(load: Callable[[], T]) -> T:
    from agrimatch.scenario import ScenarioError

    try:
        return load()
    except ScenarioError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


@sim_app.command("backfill")
def sim_backfill(
    scenario: Annotated[
        str, typer.Option(help="Scenario: a shipped name (garlic-glut, ...) or a TOML file")
    ] = "default",
    seasons: Annotated[
        int | None, typer.Option(min=1, help="Seasons to write (default: the scenario's)")
    ] = None,
    interval: Annotated[
        float, typer.Option(min=60.0, help="Telemetry sampling interval in the past, seconds")
    ] = 3600.0,
    via: Annotated[
        str, typer.Option(help="store: straight into the store (fast); mqtt: through the broker")
    ] = "store",
    realism: Annotated[
        bool, typer.Option(help="Sensor faults, clock drift and battery sleep in the history")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Write a scenario's past seasons: telemetry, platform demand, truth and campaigns.

    Telemetry and demand go to the store (AGRIMATCH_INFLUX_URL or the embedded
    store); the truth (yields, harvest windows) and campaign history go to the
    registry (AGRIMATCH_DATABASE_URL or SQLite in AGRIMATCH_DATA_DIR). With
    --via mqtt, telemetry is published to AGRIMATCH_MQTT_URL for ingest to store
    (start ingest with AGRIMATCH_INGEST_MAX_AGE_DAYS beyond the seasons).
    """
    from agrimatch.cli.preflight import require_data_dir, require_influx
    from agrimatch.cli.wiring import open_configured_store, open_registry
    from agrimatch.mqtt import MqttEndpoint
    from agrimatch.scenario import load_scenario
    from firmware_sim.backfill import BackfillOptions, MqttSink, StoreSink, TelemetrySink, backfill

    setup_logging(verbose)
    settings = settings_or_exit()
    require_data_dir(settings)  # the registry (SQLite unless AGRIMATCH_DATABASE_URL) and state
    require_influx(settings)
    if via not in ("store", "mqtt"):
        err_console.print(f"[red]error:[/] --via must be store or mqtt, not {via!r}")
        raise typer.Exit(2)
    if via == "mqtt" and settings.mqtt_embedded:
        err_console.print("[red]error:[/] --via mqtt needs AGRIMATCH_MQTT_URL")
        raise typer.Exit(2)
    loaded = _scenario_or_exit(lambda: load_scenario(scenario))
    store = open_configured_store(settings)
    sessions = open_registry(settings)
    sink: TelemetrySink
    sink = MqttSink(MqttEndpoint.from_settings(settings)) if via == "mqtt" else StoreSink(store)
    try:
        with _stage_progress() as report:
            # Seasons beyond a region's weather file fail here, before anything is simulated.
            result = _scenario_or_exit(
                lambda: backfill(
                    loaded,
                    store,
                    sessions,
                    sink,
                    BackfillOptions(seasons=seasons, interval_s=interval, realism=realism),
                    report,
                )
            )
    finally:
        if isinstance(sink, MqttSink):
            sink.close()
        store.close()
    table = Table(title=f"backfill {loaded.name}", show_header=False)
    table.add_row("seasons", ", ".join(str(y) for y in result.years))
    table.add_row("field-seasons (truth recorded)", f"{result.field_seasons:,}")
    table.add_row("devices", f"{result.devices:,}")
    table.add_row(
        "telemetry points / readings", f"{result.telemetry_points:,} / {result.readings:,}"
    )
    table.add_row("demand points", f"{result.demand_points:,}")
    table.add_row("campaigns (history)", f"{result.campaigns:,}")
    table.add_row(
        "time", f"{result.seconds:,.1f} s ({result.readings_per_minute:,.0f} readings/min)"
    )
    console.print(table)


@app.command()
def demo(
    duration: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Serve the API and dashboard this many seconds, then exit (default: "
            "until Ctrl-C; 0: exit after the summary)",
        ),
    ] = None,
    scenario: Annotated[
        str, typer.Option(help="Scenario: a shipped name or a TOML file")
    ] = "default",
    seasons: Annotated[int, typer.Option(min=2, help="Past seasons to backfill")] = 3,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Forecast date (default: 15 April of the last backfilled season)"
        ),
    ] = None,
    fleet_seconds: Annotated[
        float, typer.Option(min=1.0, help="Real seconds to run the live fleet")
    ] = 20.0,
    speed: Annotated[float, typer.Option(min=1.0, help="Simulated seconds per real second")] = 60.0,
    realism: Annotated[
        bool, typer.Option(help="5G outages, sensor faults, clock drift, battery sleep")
    ] = True,
    garbage: Annotated[
        int, typer.Option(min=0, help="Malformed messages to inject, to show dead-lettering")
    ] = 3,
    host: Annotated[str, typer.Option(help="Address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: a free one)")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """The whole loop with nothing configured: history, live telemetry, forecast, the answer.

    Backfills the scenario's past seasons (once per data dir), runs its live
    fleet through MQTT and ingest (an in-process amqtt broker and the embedded
    store unless AGRIMATCH_MQTT_URL / AGRIMATCH_INFLUX_URL point elsewhere),
    checks every reading in the store, trains and forecasts, prints the
    campaigns and planting changes, then serves the API and the dashboard
    with a key made for the demo. Exits 1 if the store disagrees with what the
    devices sent or the forecast fails.
    """
    from agrimatch.cli.common import parse_day, stage_spinner
    from agrimatch.cli.demo import print_summary
    from agrimatch.cli.forecast_views import print_answer, wide
    from agrimatch.cli.main_job import MainJobError, MainJobOptions, run_main_job, serve_api
    from agrimatch.cli.preflight import require_broker, require_data_dir, require_influx
    from agrimatch.scenario import load_scenario
    from forecasting.errors import ChainError

    setup_logging(verbose)
    settings = settings_or_exit()
    # Bounded checks first: a missing service is one line now, not minutes of retries.
    require_data_dir(settings)
    require_influx(settings)
    if not settings.mqtt_embedded:
        require_broker(settings)
    loaded = _scenario_or_exit(lambda: load_scenario(scenario))
    day = parse_day(as_of) if as_of is not None else None
    options = MainJobOptions(
        loaded, seasons, fleet_seconds, speed, realism, garbage, day, duration, host, port
    )
    try:
        with stage_spinner() as stage:
            result = run_main_job(settings, options, err_console, stage)
    except (MainJobError, ChainError) as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    out = wide(console)
    history = result.history
    out.print(
        f"history: seasons {', '.join(map(str, history.years))} of {loaded.name}, "
        f"{history.field_seasons} field-seasons ({'reused' if history.reused else 'backfilled'})"
    )
    print_summary(result.telemetry, out)
    if not result.telemetry.consistent:
        raise typer.Exit(1)
    print_answer(result.results, out)
    if duration == 0:
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    with serve_api(settings, host, port) as served:
        out.print(f"[bold]dashboard[/]: {served.url}/dashboard", highlight=False)
        out.print(f"[bold]API[/]: {served.url}/v1 (OpenAPI {served.url}/v1/openapi.json)")
        # The key goes to stdout once, as `agrimatch keys create` shows a new key.
        out.print(f"[bold]key[/] (admin, made for this demo): {served.key}", highlight=False)
        until = "Ctrl-C" if duration is None else f"{duration:g} s"
        out.print(f"serving until {until}", highlight=False)
        stop.wait(duration)


app.add_typer(forecast_app, name="forecast")
app.add_typer(keys_app, name="keys")
app.add_typer(devices_app, name="devices")
app.add_typer(import_app, name="import")
app.command("serve")(serve)


@app.command()
def backtest(
    scenario: Annotated[
        str, typer.Option(help="Scenario: a shipped name (garlic-glut, ...) or a TOML file")
    ] = "default",
    seasons: Annotated[
        int | None, typer.Option(min=3, help="Seasons of history (default: the scenario's)")
    ] = None,
    interval: Annotated[
        float, typer.Option(min=60.0, help="Telemetry sampling interval of the history, seconds")
    ] = 21600.0,
    realism: Annotated[
        bool, typer.Option(help="Sensor faults, clock drift and battery sleep in the history")
    ] = False,
    scale: Annotated[
        float,
        typer.Option(min=0.001, max=1.0, help="Share of the scenario's farms (and demand) to keep"),
    ] = 1.0,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Where the history is kept (default AGRIMATCH_DATA_DIR/backtest/NAME)"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Backtest forecasts and recommendations over a scenario's simulated history.

    Rolling origin: yield P50 WAPE 90/60/30 days before harvest against the
    regional-mean and last-season baselines, pinball loss and P10-P90
    coverage; weekly demand WAPE against seasonal naive; the chain's campaigns
    replayed in the simulated market against none and a naive start at
    harvest. Prints tables, writes a PNG of supply vs demand with the campaign
    windows and a JSON report into the work directory. The history is
    backfilled there once (its own store and registry, never the configured
    ones) and reused.
    """
    from agrimatch.cli.backtest_wiring import print_report, run_backtest_command
    from agrimatch.scenario import load_scenario
    from firmware_sim.backfill import BackfillOptions
    from forecasting.backtest import BacktestOptions
    from forecasting.chain import ChainError

    setup_logging(verbose)
    settings = settings_or_exit()
    loaded = _scenario_or_exit(lambda: load_scenario(scenario).scaled(scale))
    if (seasons or loaded.seasons) < 3:
        err_console.print(
            f"[red]error:[/] a backtest needs 3 seasons or more (2 to learn, 1 to test); "
            f"{loaded.name} has {loaded.seasons}: pass --seasons 3"
        )
        raise typer.Exit(2)
    suffix = "" if scale == 1.0 else f"-scale{scale:g}"
    where = work_dir or settings.data_dir / "backtest" / f"{loaded.name}{suffix}"
    try:
        with _stage_progress() as report:
            run = run_backtest_command(
                loaded,
                where,
                BackfillOptions(seasons=seasons, interval_s=interval, realism=realism),
                BacktestOptions(),
                report,
            )
    except ChainError as exc:
        err_console.print(f"[red]backtest failed:[/] {exc}")
        raise typer.Exit(1) from None
    source = "backfilled now" if run.backfilled else "reused"
    # Piped into a file or CI log, rich would wrap the tables at 80 columns.
    out = console if console.is_terminal else Console(width=140)
    out.print(f"backtest {loaded.name}: history in {where} ({source})")
    print_report(run.report, out)
    out.print(f"PNG: {run.png or 'none (no crop the platforms sell)'}; JSON: {run.json_path}")


@app.command()
def scheduler(
    run_now: Annotated[
        str | None,
        typer.Option(help="Run this job once now (refresh-features, retrain, forecast) and exit"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the scheduled jobs until SIGINT/SIGTERM: refresh features (daily 02:00 UTC),
    retrain (Mondays 01:00), forecast + balance + recommend (daily 03:00).

    Jobs live in the registry database (APScheduler's job store), so a restart
    keeps their schedule; every run is recorded with its start, end, status and
    metrics (`job_runs`).
    """
    from agrimatch.cli.wiring import open_forecast_service
    from agrimatch.clock import to_datetime
    from agrimatch.registry import database_url
    from forecasting.jobs import build_scheduler, record_run

    setup_logging(verbose)
    settings = settings_or_exit()
    clock = make_clock(settings.clock_start, settings.clock_speed)
    service = open_forecast_service(settings)
    store, sessions = service.store, service.sessions
    jobs = service.scheduled_jobs()
    try:
        if run_now is not None:
            chosen = {job.name: job for job in jobs}.get(run_now)
            if chosen is None:
                err_console.print(
                    f"[red]error:[/] no job {run_now!r} (jobs: {', '.join(j.name for j in jobs)})"
                )
                raise typer.Exit(2)
            run = record_run(sessions, chosen.name, to_datetime(clock.now()).date(), chosen.func)
            console.print(
                f"{run.job} as of {run.as_of}: {run.status} {run.metrics_json or run.error}"
            )
            raise typer.Exit(0 if run.status == "ok" else 1)
        runner = build_scheduler(
            database_url(settings),
            jobs,
            sessions,
            lambda: to_datetime(clock.now()).date(),
            blocking=False,
        )
        stop = threading.Event()
        _stop_on_signals(stop)
        runner.start()
        for job in runner.get_jobs():
            logging.getLogger("agrimatch.scheduler").info(
                "%s next at %s", job.id, job.next_run_time
            )
        stop.wait()
        runner.shutdown(wait=True)
    finally:
        store.close()
