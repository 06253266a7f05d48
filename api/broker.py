"""Downlink to devices: the retained config message, published on the broker.

A seam (:class:`ConfigPublisher`) like the store's: the API speaks to it, and
:class:`MqttConfigPublisher` is the one adapter, on the kernel's broker
settings. Config updates are rare, so each publish opens a connection of its
own, waits for the broker's PUBACK (QoS 1) and closes it: no connection to
keep alive between them.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Protocol

from agrimatch.contract.device_config import ConfigMessage
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint, make_paho_client

DEFAULT_TIMEOUT_S = 5.0


class BrokerUnavailable(Exception):
    """The broker could not be reached, refused us, or did not confirm in time."""


class ConfigPublisher(Protocol):
    def publish_config(self, address: DeviceAddress, config: ConfigMessage) -> None:
        """Publish ``config`` retained on the device's config topic; BrokerUnavailable if not."""
        ...

    def ping(self) -> None:
        """Return when the broker accepts a connection; BrokerUnavailable if not."""
        ...


class MqttConfigPublisher:
    """:class:`ConfigPublisher` over MQTT (QoS 1, retained)."""

    def __init__(self, endpoint: MqttEndpoint, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"MqttConfigPublisher({self.endpoint!r})"

    def publish_config(self, address: DeviceAddress, config: ConfigMessage) -> None:
        with _Connection(self.endpoint, self.timeout_s) as client:
            info = client.publish(address.config_topic, config.to_json(), qos=1, retain=True)
            try:
                info.wait_for_publish(self.timeout_s)
            except (RuntimeError, ValueError) as exc:
                raise BrokerUnavailable(f"publish failed: {exc}") from None
            if not info.is_published():
                raise BrokerUnavailable(f"no PUBACK within {self.timeout_s:g} s")

    def ping(self) -> None:
        with _Connection(self.endpoint, self.timeout_s):
            pass


class _Connection:
    """A connected paho client for one short exchange; CONNACK awaited on entry."""

    def __init__(self, endpoint: MqttEndpoint, timeout_s: float) -> None:
        self._endpoint = endpoint
        self._timeout_s = timeout_s
        self._client = make_paho_client(endpoint, f"agrimatch-api-{uuid.uuid4().hex[:12]}")
        self._connected = threading.Event()
        self._refused: str | None = None
        self._client.on_connect = self._on_connect

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            self._refused = str(reason)
        self._connected.set()

    def __enter__(self) -> Any:
        try:
            self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise BrokerUnavailable(f"cannot connect to {self._endpoint!r}: {exc}") from None
        self._client.loop_start()
        if not self._connected.wait(self._timeout_s):
            self._close()
            raise BrokerUnavailable(f"no CONNACK from {self._endpoint!r} in {self._timeout_s:g} s")
        if self._refused is not None:
            self._close()
            raise BrokerUnavailable(f"{self._endpoint!r} refused the connection: {self._refused}")
        return self._client

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
