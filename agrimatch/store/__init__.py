"""Telemetry storage: the :class:`TelemetryStore` port and its adapters.

Ingest, forecasting and the API speak only the port. Adapters:
:mod:`agrimatch.store.influx` (InfluxDB v1-compatible HTTP API) and
:mod:`agrimatch.store.embedded` (SQLite, for the no-services default).
"""

from agrimatch.store.port import (
    AggregateRow,
    Aggregation,
    FieldValue,
    Point,
    Rejected,
    StoreError,
    StoreUnavailable,
    TelemetryStore,
    WriteResult,
)

__all__ = [
    "AggregateRow",
    "Aggregation",
    "FieldValue",
    "Point",
    "Rejected",
    "StoreError",
    "StoreUnavailable",
    "TelemetryStore",
    "WriteResult",
]
