"""What a command checks before it starts work, so that a missing service or an
unusable setting ends it at once with one line naming the fix, instead of a
traceback or minutes of retries.

Each ``require_*`` prints that line and raises ``typer.Exit``: 2 for a setting
that is wrong, 1 for a service that is not there (or refuses us).
"""

from __future__ import annotations

import logging
import time

import httpx

from agrimatch.cli.common import fail
from agrimatch.mqtt import BrokerUnreachable, MqttEndpoint, check_broker
from agrimatch.settings import Settings, SettingsError

log = logging.getLogger(__name__)


class InfluxNotReady(RuntimeError):
    """InfluxDB cannot be used; ``refused`` tells a credentials refusal from an absence."""

    def __init__(self, message: str, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


def require_data_dir(settings: Settings) -> None:
    """The data dir exists (created if needed) and is writable; else exit 2."""
    try:
        settings.ensure_data_dir()
    except SettingsError as exc:
        raise fail(str(exc), 2) from None


def require_broker(settings: Settings, timeout_s: float = 5.0) -> MqttEndpoint:
    """The configured broker accepts a connection within ``timeout_s``; else exit 1."""
    endpoint = MqttEndpoint.from_settings(settings)
    try:
        check_broker(endpoint, timeout_s)
    except BrokerUnreachable as exc:
        raise fail(f"{exc}: start the broker or fix AGRIMATCH_MQTT_URL", 1) from None
    return endpoint


def check_influx(settings: Settings, timeout_s: float = 5.0) -> None:
    """Raise :class:`InfluxNotReady` unless InfluxDB answers within ``timeout_s`` and takes
    the configured credentials. The message shows the URL with its password masked."""
    if settings.influx_url is None:
        return
    shown = f"AGRIMATCH_INFLUX_URL={settings.influx_url_display}"
    headers = {"User-Agent": "agrimatch"}
    auth: httpx.Auth | None = None
    if settings.influx_token is not None:
        headers["Authorization"] = f"Token {settings.influx_token.get_secret_value()}"
    elif settings.influx_username:
        password = settings.influx_password
        auth = httpx.BasicAuth(
            settings.influx_username, password.get_secret_value() if password else ""
        )
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=settings.influx_url, headers=headers, auth=auth) as client:
        while True:
            try:
                # /ping answers without credentials; it says the server is up.
                client.get("/ping", timeout=max(0.1, min(2.0, deadline - time.monotonic())))
                break
            except httpx.HTTPError as exc:
                if time.monotonic() >= deadline:
                    why = str(exc) or type(exc).__name__
                    raise InfluxNotReady(
                        f"InfluxDB at {shown} is not reachable ({why}): start InfluxDB, fix "
                        "AGRIMATCH_INFLUX_URL, or unset it for the embedded store",
                        refused=False,
                    ) from None
                time.sleep(0.5)
        try:
            answer = client.post("/query", data={"q": "SHOW DATABASES"}, timeout=timeout_s)
        except httpx.HTTPError:
            return  # up a moment ago: the write path will retry and tell
        if answer.status_code == 401:
            raise InfluxNotReady(
                f"InfluxDB at {shown} refused the credentials (HTTP 401): fix "
                "AGRIMATCH_INFLUX_USERNAME/AGRIMATCH_INFLUX_PASSWORD or AGRIMATCH_INFLUX_TOKEN",
                refused=True,
            )


def require_influx(settings: Settings, timeout_s: float = 5.0) -> None:
    """InfluxDB (when configured) is up and takes our credentials; else exit 1."""
    if settings.influx_url is None:
        return
    try:
        check_influx(settings, timeout_s)
    except InfluxNotReady as exc:
        raise fail(str(exc), 1) from None


def require_influx_credentials(settings: Settings, timeout_s: float = 5.0) -> None:
    """Exit 1 if InfluxDB refuses the credentials; only warn if it is not reachable.

    For ingest: InfluxDB being down is what the delivery promise covers (messages
    wait, unacknowledged, and the writes are retried), wrong credentials are not.
    """
    if settings.influx_url is None:
        return
    try:
        check_influx(settings, timeout_s)
    except InfluxNotReady as exc:
        if exc.refused:
            raise fail(str(exc), 1) from None
        log.warning("%s; ingest holds messages unacknowledged and retries", exc)
