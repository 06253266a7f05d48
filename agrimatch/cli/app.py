"""Typer app: ``agrimatch demo | sim | ingest | config show``."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from agrimatch.clock import make_clock
from agrimatch.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="agrimatch",
    help="Farm telemetry in, supply forecasts and demand matching out.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

console = Console()
err_console = Console(stderr=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )
    for noisy in ("amqtt", "transitions", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (from AGRIMATCH_* and .env), secrets masked."""
    settings = _settings()
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
        bool, typer.Option(help="Use the shared subscription $share/ingest/... (N replicas)")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Consume telemetry from the broker into the store until SIGINT/SIGTERM.

    Needs AGRIMATCH_MQTT_URL (a broker to consume from); the store is InfluxDB
    when AGRIMATCH_INFLUX_URL is set, else the embedded store in AGRIMATCH_DATA_DIR.
    """
    from agrimatch.cli.wiring import build_ingest, open_configured_store

    _logging(verbose)
    settings = _settings()
    if settings.mqtt_embedded:
        err_console.print(
            "[red]error:[/] AGRIMATCH_MQTT_URL is unset: `agrimatch ingest` needs a broker "
            "(`agrimatch demo` runs an embedded one)"
        )
        raise typer.Exit(2)
    store = open_configured_store(settings)
    service = build_ingest(settings, store, client_id=client_id, shared=shared)
    stop = threading.Event()
    _stop_on_signals(stop)
    service.start()
    try:
        while not stop.wait(settings.ingest_stats_interval_s):
            logging.getLogger("agrimatch.ingest").info("%s", service.metrics.snapshot().as_dict())
    finally:
        service.stop()
        store.close()
        console.print(service.metrics.snapshot().as_dict())


sim_app = typer.Typer(
    help="Simulated world: a live fleet over MQTT, or past seasons backfilled.",
    invoke_without_command=True,
)
app.add_typer(sim_app, name="sim")


@sim_app.callback()
def sim(
    ctx: typer.Context,
    devices: Annotated[int, typer.Option(min=1, help="Number of simulated sensor nodes")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same fleet and readings")] = 1,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Simulated seconds per real second")
    ] = 1.0,
    interval: Annotated[float, typer.Option(min=1.0, help="Sampling interval, seconds")] = 60.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many simulated seconds (default: run)")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run a simulated fleet publishing SenML telemetry to AGRIMATCH_MQTT_URL.

    `agrimatch sim backfill --help` writes past seasons instead.
    """
    from agrimatch.cli.wiring import run_fleet_until

    if ctx.invoked_subcommand is not None:
        return
    _logging(verbose)
    settings = _settings()
    if settings.mqtt_embedded:
        err_console.print(
            "[red]error:[/] AGRIMATCH_MQTT_URL is unset: `agrimatch sim` needs a broker"
        )
        raise typer.Exit(2)
    from agrimatch.mqtt import MqttEndpoint

    stop = threading.Event()
    _stop_on_signals(stop)
    clock = make_clock(settings.clock_start, speed)
    stats = run_fleet_until(
        MqttEndpoint.from_settings(settings), clock, devices, seed, interval, duration, stop
    )
    console.print(
        f"devices {stats.devices}, messages {stats.messages_sent}, readings {stats.readings_sent}"
    )


@app.command()
def demo(
    duration: Annotated[float, typer.Option(min=1.0, help="Real seconds to run the fleet")] = 20.0,
    devices: Annotated[int, typer.Option(min=1, help="Simulated sensor nodes")] = 50,
    speed: Annotated[float, typer.Option(min=1.0, help="Simulated seconds per real second")] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    garbage: Annotated[
        int, typer.Option(min=0, help="Malformed messages to inject, to show dead-lettering")
    ] = 3,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fleet → MQTT → ingest → store, with nothing configured; prints a summary.

    Runs an in-process broker (amqtt) and the embedded store unless
    AGRIMATCH_MQTT_URL / AGRIMATCH_INFLUX_URL point elsewhere.
    """
    from agrimatch.cli.demo import DemoOptions, print_summary, run_demo

    _logging(verbose)
    settings = _settings()
    summary = run_demo(settings, DemoOptions(duration, devices, speed, seed, garbage), console)
    print_summary(summary, console)
    if not summary.consistent:
        raise typer.Exit(1)
