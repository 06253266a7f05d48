"""The embedded MQTT broker (amqtt) for running with nothing installed.

amqtt speaks MQTT 3.1.1 only and has no shared subscriptions, so against it
ingest connects with 3.1.1 and a plain subscription (one ingest process).
It runs on its own event loop in a background thread so that synchronous code
(paho's ingest) and asyncio code (the simulator) can both use it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from types import TracebackType

from amqtt.broker import Broker

from agrimatch.mqtt import MqttEndpoint

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """An in-process amqtt broker on a free loopback port."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt", daemon=True)
        self._broker: Broker | None = None

    @property
    def endpoint(self) -> MqttEndpoint:
        return MqttEndpoint(self.host, self.port, protocol="3.1.1")

    def start(self) -> EmbeddedBroker:
        # amqtt logs every packet at INFO; keep our output readable.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

        async def _start() -> Broker:
            broker = Broker(config)
            await broker.start()
            return broker

        self._broker = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout=30)
        log.info("embedded broker on %s:%s", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            try:
                asyncio.run_coroutine_threadsafe(broker.shutdown(), self._loop).result(timeout=30)
            except Exception:  # a broker that fails to shut down cleanly must not hide results
                log.exception("embedded broker did not shut down cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
