"""What every command shares: the consoles, the settings (or a clean exit), logging, progress.

Commands live in modules of their own (``forecast_cmd``, ``import_cmd``, ...);
they import these instead of the app, so registering a command never makes
an import cycle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

import typer
from rich.console import Console
from rich.logging import RichHandler

from agrimatch.settings import Settings, SettingsError, load_settings

console = Console()
err_console = Console(stderr=True)


def settings_or_exit(*, data_dir: bool = True) -> Settings:
    """The settings, or exit 2 with the message naming the variable to fix; with
    ``data_dir``, the data dir is also made sure of (created, writable)."""
    try:
        settings = load_settings()
        if data_dir:
            settings.ensure_data_dir()
        return settings
    except SettingsError as exc:
        raise fail(str(exc)) from None


def setup_logging(verbose: bool, *, plain: bool = False) -> None:
    """Log to stderr through rich (``plain``: one plain line per record, for servers,
    whose access log rich would spend a tenth of their time rendering); third-party
    chatter only from warnings up."""
    handler: logging.Handler = (
        logging.StreamHandler() if plain else RichHandler(console=err_console, show_path=False)
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if plain else "%(message)s",
        handlers=[handler],
    )
    for noisy in ("amqtt", "transitions", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise (``raise fail(...)``)."""
    # soft_wrap: one line whatever the terminal's width, so a log or a grep keeps it whole.
    err_console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def parse_day(value: str | None, option: str = "--as-of") -> date:
    """``YYYY-MM-DD`` as a date (today when None); exit 2 naming the option otherwise."""
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} must be YYYY-MM-DD, not {value!r}") from None


@contextmanager
def stage_spinner() -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the running stage and the time so far; yields
    ``report(stage)``. Each finished stage is left on its own line with its time."""
    started = time.monotonic()
    current: list[tuple[str, float]] = []
    with err_console.status("starting", spinner="dots") as status:

        def report(stage: str) -> None:
            now = time.monotonic()
            if current:
                name, since = current[-1]
                err_console.print(f"  {name} [dim]{now - since:.1f} s[/]", highlight=False)
            current.append((stage, now))
            status.update(f"{stage} [dim](at {now - started:.0f} s)[/]")

        yield report
        if current:
            name, since = current[-1]
            err_console.print(f"  {name} [dim]{time.monotonic() - since:.1f} s[/]", highlight=False)
