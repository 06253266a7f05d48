"""Broker connection settings shared by ingest, the simulator and the API.

The kernel owns how to reach the broker; each service only says who it is.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agrimatch.settings import Settings


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
    if endpoint.protocol == "5":
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=manual_ack,
        )
    else:
        client = paho.Client(
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
