"""When a node samples: times aligned to its interval and phase. Pure, integer milliseconds.

Sample times are ``k * interval + phase`` for whole ``k``; integers keep a
season of samples exactly on the grid (float seconds would drift).
"""

from __future__ import annotations


def to_ms(seconds: float) -> int:
    """Seconds as whole milliseconds."""
    return round(seconds * 1000)


def next_sample_ms(after_ms: int, interval_ms: int, phase_ms: int) -> int:
    """The first sample time strictly after ``after_ms`` on the grid ``k * interval + phase``.

    The phase is taken modulo the interval, so it still applies when the
    interval is reconfigured shorter than the phase.
    """
    if interval_ms <= 0:
        raise ValueError("interval must be positive")
    phase = phase_ms % interval_ms
    k = (after_ms - phase) // interval_ms + 1
    return k * interval_ms + phase
