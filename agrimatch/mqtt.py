"""Broker connection settings shared by ingest, the simulator and the API.

The kernel owns how to reach the broker; each service only says who it is.
It also says why a connection failed, in words fit for an operator and
without the password: :func:`check_broker` for a bounded check at start,
:func:`last_connect_error` for a client that keeps retrying.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agrimatch.settings import Settings


class BrokerUnreachable(RuntimeError):
    """The broker could not be reached or refused us; the message says which, and why."""


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where the broker is and how to log in to it."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    protocol: str = "5"  # "5" or "3.1.1"

    @classmethod
    def from_url(cls, url: str, ca_file: Path | None = None, protocol: str = "5") -> MqttEndpoint:
        parts = urlsplit(url)
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            ca_file=ca_file,
            protocol=protocol,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> MqttEndpoint:
        if settings.mqtt_url is None:
            raise ValueError("no broker configured (AGRIMATCH_MQTT_URL is unset)")
        return cls.from_url(
            settings.mqtt_url.get_secret_value(), settings.mqtt_ca_file, settings.mqtt_protocol
        )

    def __repr__(self) -> str:  # never print the password
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}:***@" if self.username else ""
        return f"MqttEndpoint({scheme}://{user}{self.host}:{self.port}, v{self.protocol})"

    @property
    def display(self) -> str:
        """The broker's address for messages: scheme, user, host and port, no password."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


class _ReportingClient(paho.Client):
    """A paho client that remembers why its last connection attempt failed.

    paho's ``on_connect_fail`` callback is given no reason; the socket error
    it swallowed is the one thing an operator needs to see ("connection
    refused", "name or service not known", a TLS failure).
    """

    last_connect_error: str | None = None

    def reconnect(self) -> paho.MQTTErrorCode:
        try:
            result = super().reconnect()
        except OSError as exc:
            self.last_connect_error = describe_connect_error(exc)
            raise
        self.last_connect_error = None
        return result


def describe_connect_error(exc: BaseException) -> str:
    """``ConnectionRefusedError: [Errno 111] Connection refused`` and the like."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def last_connect_error(client: paho.Client) -> str | None:
    """Why ``client``'s last connection attempt failed (None: it did not, or unknown)."""
    return getattr(client, "last_connect_error", None)


def make_paho_client(
    endpoint: MqttEndpoint,
    client_id: str,
    *,
    clean_start: bool = True,
    manual_ack: bool = False,
) -> paho.Client:
    """A paho 2.x client for ``endpoint``, not yet connected.

    ``clean_start=False`` asks for a persistent session (MQTT 3.1.1:
    ``clean_session=False``; MQTT 5: the session expiry is set at connect).
    """
    client: paho.Client
    if endpoint.protocol == "5":
        client = _ReportingClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=manual_ack,
        )
    else:
        client = _ReportingClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=clean_start,
            manual_ack=manual_ack,
        )
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        context = ssl.create_default_context(
            cafile=str(endpoint.ca_file) if endpoint.ca_file else None
        )
        client.tls_set_context(context)
    return client


def check_broker(endpoint: MqttEndpoint, timeout_s: float = 5.0) -> None:
    """Connect once (clean start, a throw-away client id) and disconnect.

    Raises :class:`BrokerUnreachable` when the broker cannot be reached or
    does not accept the connection within ``timeout_s``; the message names
    the broker (without the password) and the reason. Leaves no session.
    """
    client = make_paho_client(endpoint, f"agrimatch-check-{uuid.uuid4().hex[:12]}")
    client.connect_timeout = timeout_s
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome["reason"] = reason
        answered.set()

    client.on_connect = on_connect
    where = f"the MQTT broker at {endpoint.display}"
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=max(5, round(timeout_s) * 2))
    except OSError as exc:
        raise BrokerUnreachable(f"cannot reach {where}: {describe_connect_error(exc)}") from None
    client.loop_start()
    try:
        if not answered.wait(timeout_s):
            raise BrokerUnreachable(f"{where} did not answer within {timeout_s:g} s")
        reason = outcome["reason"]
        if reason.is_failure:
            raise BrokerUnreachable(f"{where} refused the connection: {reason}")
    finally:
        client.disconnect()
        client.loop_stop()
