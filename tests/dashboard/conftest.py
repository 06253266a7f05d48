"""The dashboard in a real headless Chromium against the real app served by uvicorn.

Chromium is Debian's (``./scripts/test`` installs it), driven by Playwright's
Python package with ``executable_path``: no browser is downloaded. A missing
Chromium fails the run instead of skipping it: the page is only proven in a
browser.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for the dashboard tests, stopped after them: Playwright's
    sync API keeps an event loop running in the main thread, and every later
    ``asyncio.run()`` of the suite would be refused while it runs."""
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
