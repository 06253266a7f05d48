"""The frames forecasting modules pass to each other: their columns, in one place.

Every frame is a pandas DataFrame; these tuples name the columns a producer
must provide and a consumer may rely on. Units are in the names.
"""

from __future__ import annotations

# Daily per-field telemetry aggregates, the input of feature engineering: one row per
# (farm, field, day) with the field's devices averaged (sums for rain).
DAILY_FIELD_COLUMNS = (
    "farm",
    "field",
    "day",  # day: datetime.date, UTC
    "air_temp_min_c",
    "air_temp_max_c",
    "air_temp_mean_c",
    "rain_mm",
    "solar_rad_mj_m2",
    "air_rh_mean_pct",
    "soil_moisture_10cm_pct",
    "soil_moisture_30cm_pct",
    "soil_temp_mean_c",
    "ndvi",  # NaN where the field has no canopy camera
)

# Field context from the registry: one row per (farm, field, year).
FIELD_SEASON_COLUMNS = (
    "farm",
    "field",
    "region",
    "crop",
    "soil",
    "area_ha",
    "year",
    "planted_on",
)

# Features as of a date: FIELD_SEASON_COLUMNS + "as_of" + numeric features (see features.py).
# Yield target column (from the registry truth): "yield_t_ha".

# Weekly supply, per crop and region (week: the Monday, datetime.date).
SUPPLY_COLUMNS = ("crop", "region", "week", "supply_kg_p10", "supply_kg_p50", "supply_kg_p90")

# Weekly demand forecast, per platform, crop and region.
DEMAND_COLUMNS = (
    "platform",
    "crop",
    "region",
    "week",
    "demand_kg_p10",
    "demand_kg_p50",
    "demand_kg_p90",
)

# Balance per crop, region and week.
BALANCE_COLUMNS = (
    "crop",
    "region",
    "week",
    "supply_kg_p10",
    "supply_kg_p50",
    "supply_kg_p90",
    "demand_kg_p10",
    "demand_kg_p50",
    "demand_kg_p90",
    "surplus_kg_p50",  # supply - demand, negative: shortfall
    "p_surplus",
    "p_shortfall",
)
