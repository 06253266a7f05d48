"""A device's own clock: a crystal that drifts, resynchronised over the network. Pure.

The device stamps readings with what its clock says; the truth keeps the true
time. The clock runs ``ppm`` parts per million fast or slow (fixed per
device: its crystal) and is set right (to within a few milliseconds) at
scheduled resyncs, NTP-like over the radio. A resync needs the link: one
scheduled during a coverage outage is missed, and the error keeps growing
until the next one that finds the link up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from firmware_sim import _noise

MAX_MISSED_RESYNCS = 400  # how far back to look for a resync that found the link up


@dataclass(frozen=True, slots=True)
class ClockProfile:
    """How device clocks drift and how often they are set right.

    A ±20 ppm crystal at a 6 h resync is off by at most ~0.4 s just before it.
    """

    drift_ppm_sigma: float = 20.0  # per-device drift rate, normal around 0
    resync_interval_s: float = 6 * 3600.0
    resync_error_ms: float = 20.0  # residual after a resync (network delay asymmetry)

    def __post_init__(self) -> None:
        if not self.resync_interval_s > 0:
            raise ValueError("resync_interval_s must be positive")


class DeviceClock:
    """The clocks of every device of a fleet: ``offset_s(device, t)`` is pure.

    ``link_up(device, t_s)`` tells whether a resync scheduled at ``t_s`` can
    reach the time server; by default it always can.
    """

    def __init__(
        self,
        seed: int,
        profile: ClockProfile = ClockProfile(),
        link_up: Callable[[str, float], bool] | None = None,
    ) -> None:
        self.seed = seed
        self.profile = profile
        self.link_up = link_up

    def drift_ppm(self, device: str) -> float:
        """How fast the device's clock runs, in parts per million (positive: fast)."""
        return self.profile.drift_ppm_sigma * _noise.normal(self.seed, "clock-drift", device, 0)

    def last_resync_s(self, device: str, t_s: float) -> float:
        """The time of the last resync at or before ``t_s`` that found the link up."""
        interval = self.profile.resync_interval_s
        # Devices resync at their own phase, so a fleet does not hit the server together.
        phase = interval * _noise.uniform(self.seed, "clock-phase", device, 0)
        k = math.floor((t_s - phase) / interval)
        for back in range(MAX_MISSED_RESYNCS):
            at = (k - back) * interval + phase
            if self.link_up is None or self.link_up(device, at):
                return at
        return (k - MAX_MISSED_RESYNCS) * interval + phase

    def offset_s(self, device: str, t_s: float) -> float:
        """Device clock minus true time at ``t_s``, in seconds."""
        synced = self.last_resync_s(device, t_s)
        residual_s = (
            self.profile.resync_error_ms
            / 1000.0
            * _noise.normal(self.seed, "clock-resync", device, round(synced * 1000))
        )
        return residual_s + self.drift_ppm(device) * 1e-6 * (t_s - synced)

    def stamp_ms(self, device: str, t_s: float) -> int:
        """What the device's clock reads at true time ``t_s``, in epoch milliseconds."""
        return round((t_s + self.offset_s(device, t_s)) * 1000)
