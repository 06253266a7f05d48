"""Pick the telemetry store the settings ask for."""

from __future__ import annotations

from agrimatch.settings import Settings
from agrimatch.store.port import TelemetryStore

EMBEDDED_FILE_NAME = "telemetry.sqlite3"


def open_store(settings: Settings) -> TelemetryStore:
    """InfluxDB when ``settings.influx_url`` is set, else the embedded SQLite store.

    The embedded file is ``settings.data_dir / "telemetry.sqlite3"``; the
    directory is created if needed. Adapters are imported here, not at module
    level, so the embedded default never loads httpx or influxdb-client.
    """
    if settings.influx_url:
        from agrimatch.store.influx import InfluxStore

        return InfluxStore.from_settings(settings)
    from agrimatch.store.embedded import EmbeddedStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedStore(settings.data_dir / EMBEDDED_FILE_NAME)
