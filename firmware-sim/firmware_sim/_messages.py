"""Status and config payloads of a node (JSON on the status and config topics). Pure.

Status (retained, QoS 1): ``{"state": "online", "interval_s": 60.0, "ts": ...}``
as the birth and after every applied config, ``{"state": "offline", ...}`` on
a graceful stop and as the last will. Config (retained downlink):
``{"interval_s": 30}``; unknown keys are ignored so the config can grow.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 86_400.0


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """The part of a config message this firmware understands."""

    interval_s: float | None = None


class ConfigError(ValueError):
    """A config message the node refuses (it keeps its current settings)."""


def online_status(interval_s: float, ts_s: float) -> bytes:
    """Birth / confirmation status: the node is up and samples every ``interval_s``."""
    return _dump({"state": "online", "interval_s": interval_s, "ts": round(ts_s, 3)})


def offline_status(ts_s: float) -> bytes:
    """Status published by a node that stops on purpose."""
    return _dump({"state": "offline", "reason": "stopped", "ts": round(ts_s, 3)})


def last_will_status() -> bytes:
    """Status the broker publishes for a node whose link died.

    No timestamp: the will is registered at connect time, and a stale ``ts``
    would tell the wrong time of the loss; the broker's delivery time does.
    """
    return _dump({"state": "offline", "reason": "lost"})


def parse_config(payload: bytes) -> DeviceConfig | None:
    """The config in ``payload``, or ``None`` for an empty payload (a cleared retained config).

    Raises :class:`ConfigError` for anything that is not a JSON object or holds
    an interval outside 1 s .. 1 day.
    """
    if not payload:
        return None
    try:
        data: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("config must be a JSON object")
    interval = data.get("interval_s")
    if interval is None:
        return DeviceConfig()
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise ConfigError(f"interval_s must be a number, got {interval!r}")
    if not math.isfinite(interval) or not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        raise ConfigError(
            f"interval_s must be within {MIN_INTERVAL_S:g}..{MAX_INTERVAL_S:g} s, got {interval!r}"
        )
    return DeviceConfig(interval_s=float(interval))


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
