"""A regional world's daily telemetry written into a real store, for the distributed
forecast's tests and bench: so a cluster's workers can read their regions' farms.

Each daily row becomes one ``telemetry`` point at local noon from one device
per field, carrying the day's mean as ``air_temp``, its extremes as
``air_temp_min``/``air_temp_max`` (a node's min/max register), its rain and
mean irradiance: :func:`forecasting.telemetry_frames.daily_field_frame` reads
the same daily values back.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd

from agrimatch.store.measurements import TELEMETRY_MEASUREMENT
from agrimatch.store.port import Point, TelemetryStore
from forecasting.telemetry_frames import HOUR_MS, W_M2_TO_MJ_M2_DAY, day_start_ms

_SENSORS = {
    "air_temp_mean_c": "air_temp",
    "air_temp_min_c": "air_temp_min",
    "air_temp_max_c": "air_temp_max",
    "rain_mm": "rain",
    "air_rh_mean_pct": "air_rh",
    "soil_moisture_10cm_pct": "soil_moisture_10cm",
    "soil_moisture_30cm_pct": "soil_moisture_30cm",
    "soil_temp_mean_c": "soil_temp",
    "ndvi": "ndvi",
}


def daily_points(daily: pd.DataFrame) -> Iterator[Point]:
    """The points a store needs to give ``daily`` (DAILY_FIELD_COLUMNS) back, day by day."""
    for row in daily.itertuples(index=False):
        fields: dict[str, float | int | bool | str] = {}
        for column, sensor in _SENSORS.items():
            value = float(getattr(row, column))
            if not math.isnan(value):
                fields[sensor] = value
        if not math.isnan(row.solar_rad_mj_m2):
            fields["solar_rad"] = float(row.solar_rad_mj_m2) / W_M2_TO_MJ_M2_DAY
        tags = {"farm": row.farm, "field": row.field, "device": f"{row.field}-node"}
        yield Point(TELEMETRY_MEASUREMENT, tags, fields, day_start_ms(row.day) + 12 * HOUR_MS)


def write_daily(store: TelemetryStore, daily: pd.DataFrame, batch: int = 20_000) -> int:
    """Write ``daily`` into ``store`` as :func:`daily_points`; the number of points written."""
    written = 0
    pending: list[Point] = []
    for point in daily_points(daily):
        pending.append(point)
        if len(pending) == batch:
            written += store.write(pending).written
            pending = []
    if pending:
        written += store.write(pending).written
    return written
