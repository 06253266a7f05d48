"""Where a device is, remembered for a few seconds.

Every telemetry post looks up its device's farm and field (the address its
MQTT topic would carry): a registry read per pack, a twelfth of the server's
time under load (bench/api_latency.py). A device's place changes rarely, so
each process keeps what it read for :data:`LOOKUP_TTL_S` seconds; a device
moved to another field posts under its new place within that time. Keys are
not kept: a revoked key must stop working at once, so every request reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from cachetools import TTLCache

from agrimatch.contract.topics import DeviceAddress

LOOKUP_TTL_S = 5.0
_ENTRIES = 10_000

T = TypeVar("T")


class Lookups:
    """Thread-safe, time-limited memory of device places."""

    def __init__(self, ttl_s: float = LOOKUP_TTL_S) -> None:
        self._lock = threading.Lock()
        self._ttl_s = ttl_s
        self._devices: TTLCache[str, DeviceAddress] = TTLCache(_ENTRIES, ttl_s)

    def device(
        self, device_id: str, read: Callable[[], DeviceAddress | None]
    ) -> DeviceAddress | None:
        """Where device ``device_id`` is registered, from memory or ``read()``."""
        return self._get(self._devices, device_id, read)

    def _get(self, cache: TTLCache[str, T], name: str, read: Callable[[], T | None]) -> T | None:
        if self._ttl_s <= 0:
            return read()
        with self._lock:
            found = cache.get(name)
        if found is not None:
            return found
        value = read()  # outside the lock: a registry read must not serialise requests
        if value is not None:
            with self._lock:
                cache[name] = value
        return value
