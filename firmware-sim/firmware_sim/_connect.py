"""The simulator's side of the broker cut: an aiomqtt client from the kernel's settings.

The kernel's :class:`~agrimatch.mqtt.MqttEndpoint` says where the broker is
and how to log in; this module only turns it into aiomqtt's arguments, and
offers the one low-level act a radio simulation needs: dropping a link
without saying goodbye.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from typing import Any

import aiomqtt

from agrimatch.mqtt import MqttEndpoint

# paho logs every lost link at ERROR; for a simulated fleet that is routine, so it
# gets a logger of its own that an operator can quieten by name.
MQTT_LOG = logging.getLogger("firmware_sim.mqtt")


def make_client(
    endpoint: MqttEndpoint,
    client_id: str,
    *,
    will: aiomqtt.Will | None = None,
    keepalive_s: int = 30,
    timeout_s: float = 10.0,
) -> aiomqtt.Client:
    """An aiomqtt client for ``endpoint`` (not connected: enter it with ``async with``).

    Clean session: a device keeps nothing at the broker between connections;
    its config topic is retained, so it gets the config again on every connect.
    """
    tls_context = None
    if endpoint.tls:
        tls_context = ssl.create_default_context(
            cafile=str(endpoint.ca_file) if endpoint.ca_file else None
        )
    # MQTT 5 says "clean start", 3.1.1 "clean session"; paho refuses the other one.
    session: dict[str, Any] = (
        {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": True}
        if endpoint.protocol == "5"
        else {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": True}
    )
    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        identifier=client_id,
        will=will,
        keepalive=keepalive_s,
        timeout=timeout_s,
        tls_context=tls_context,
        logger=MQTT_LOG,
        **session,
    )


def abort_connection(client: aiomqtt.Client) -> None:
    """Drop the client's TCP connection without an MQTT DISCONNECT, as a dead radio would.

    The broker then publishes the client's last will, and the client notices
    the loss like any other broken link. aiomqtt has no public way to do this,
    so it reaches the paho client it wraps (paho's ``socket()`` is public).
    """
    paho_client = getattr(client, "_client", None)
    sock = paho_client.socket() if paho_client is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
