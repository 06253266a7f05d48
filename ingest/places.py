"""Is a device where it says it is? Its topic's farm and field against the registry.

The broker's ACL already binds each device's login to its own topics
(``agrimatch devices provision``); this check is the second line, for a
broker whose ACL is laxer than ours or a device moved in the registry since
the ACL was written. A message from a device the registry does not know is
dead-lettered ``unknown_device``; one naming another farm or field than the
registered one, ``wrong_place``.

Answers are cached for ``ttl_s`` (unknown devices too, so a flood of made-up
ids costs one lookup each per TTL, not one per message), so ingest reads the
registry about once per device per TTL. The lookup is injected: ingest does
not import the registry (SQLAlchemy and Alembic would cost every ingest
replica ~30 MB); the composition root passes a function.

When the lookup fails (the registry restarting), the last answer seen for
that device is used, however old; a device never seen is let through and
counted. Refusing would dead-letter good readings for the length of a
registry outage, and the ACL still holds the device to its own topics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cachetools import TTLCache

from agrimatch.contract.reasons import Reason
from agrimatch.contract.topics import DeviceAddress

log = logging.getLogger(__name__)

# (farm, field) of a registered device, or None: the registry has no such device.
PlaceLookup = Callable[[str], tuple[str, str] | None]

DEFAULT_TTL_S = 60.0
DEFAULT_MAX_DEVICES = 100_000


@dataclass(frozen=True, slots=True)
class PlaceProblem:
    reason: Reason
    detail: str


class RegisteredPlaces:
    """Checks a telemetry topic's farm and field against the device's registered place."""

    def __init__(
        self,
        lookup: PlaceLookup,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_devices: int = DEFAULT_MAX_DEVICES,
    ) -> None:
        self._lookup = lookup
        self._cache: TTLCache[str, tuple[str, str] | None] = TTLCache(max_devices, ttl_s)
        # Last registered place of each device seen, for a lookup that fails. Only
        # registered devices go here, so it is bounded by the registry, not by senders.
        self._last_known: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self.lookups = 0
        self.lookup_failures = 0

    def problem(self, address: DeviceAddress) -> PlaceProblem | None:
        """Why a message on ``address`` must be refused, or None if its place is right."""
        place = self._place(address.device)
        if place is False:  # the registry unreachable and the device never seen
            return None
        if place is None:
            return PlaceProblem(
                Reason.UNKNOWN_DEVICE, f"device {address.device!r} is not in the registry"
            )
        if place != (address.farm, address.field):
            return PlaceProblem(
                Reason.WRONG_PLACE,
                f"device {address.device!r} is registered on {place[0]}/{place[1]}, "
                f"not {address.farm}/{address.field}",
            )
        return None

    def _place(self, device: str) -> tuple[str, str] | Literal[False] | None:
        with self._lock:
            if device in self._cache:
                return self._cache[device]
        try:
            place = self._lookup(device)
        except Exception as exc:  # the registry unreachable: never stop ingest for it
            self.lookup_failures += 1
            log.warning("registry lookup of device %s failed: %s", device, exc)
            with self._lock:
                return self._last_known.get(device, False)
        with self._lock:
            self.lookups += 1
            self._cache[device] = place
            if place is not None:
                self._last_known[device] = place
        return place
