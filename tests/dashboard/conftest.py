"""The dashboard in a real headless Chromium against the real app served by uvicorn.

Chromium is Debian's (``./scripts/test`` installs it), driven by Playwright's
Python package with ``executable_path``: no browser is downloaded. A missing
Chromium fails the run instead of skipping it: the page is only proven in a
browser.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

CHROMIUM_NAMES = ("chromium", "chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def chromium_executable() -> str:
    """Debian's Chromium (or ``AGRIMATCH_TEST_CHROMIUM``); fails the test run when absent."""
    configured = os.environ.get("AGRIMATCH_TEST_CHROMIUM")
    if configured:
        return configured
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium is not installed: ./scripts/test installs it (apt-get install chromium), "
        "or set AGRIMATCH_TEST_CHROMIUM to a Chromium binary",
        pytrace=False,
    )


class _Records(logging.Handler):
    """Every log record of the process while a server runs, as formatted text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class LiveServer:
    """``app`` served by uvicorn on a free 127.0.0.1 port, in a thread; access log on."""

    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # log_config None: uvicorn's records (the access log too) reach the root
        # logger, where the tests read them for keys that must never appear.
        config = uvicorn.Config(app, log_config=None, log_level="info", access_log=True)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self.logs = _Records()

    def start(self) -> None:
        logging.getLogger().addHandler(self.logs)
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the app did not start under uvicorn", pytrace=False)
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()
        logging.getLogger().removeHandler(self.logs)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    """A page in a fresh browser context, with what it logged and requested."""

    page: Any
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    page_errors: list[str] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)

    def errors(self, *, allow_statuses: tuple[int, ...] = ()) -> list[str]:
        """Console errors and uncaught exceptions; a failed load of a status in
        ``allow_statuses`` (a 403 the page expects and explains) is left out."""
        allowed = tuple(f"status of {status} " for status in allow_statuses)
        return [
            text
            for kind, text in self.console
            if kind == "error"
            and not (text.startswith("Failed to load resource") and any(a in text for a in allowed))
        ] + self.page_errors


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    watched = Tab(page)
    page.on("console", lambda message: watched.console.append((message.type, message.text)))
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
    page.on("request", lambda request: watched.requests.append(request))
    try:
        yield watched
    finally:
        context.close()


def enter_key(tab: Tab, url: str, token: str) -> None:
    """Open the dashboard and paste ``token`` into the key form."""
    tab.page.goto(url + "/")
    tab.page.fill("#key-input", token)
    tab.page.click("#key-form button[type=submit]")


def save_screenshot(tab: Tab, name: str) -> Path:
    """A full-page screenshot under tests/artifacts/ (git-ignored), its path printed."""
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    path = ARTIFACTS / name
    tab.page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
