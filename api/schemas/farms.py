"""Farms, fields, their seasons and telemetry read back. Apart from the registry's tables.

Names are the farm's words and the forecasting results' (``farm``, ``field``,
``region``, ``area_ha``, ``planted_on``), so a field's row and its forecast
read alike. Values are checked by the imports (:mod:`forecasting.imports`),
the same checks as a CSV file; the models here only give them their types.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.devices import ID_PATTERN

Every = Literal["1h", "6h", "1d"]


class FarmPublic(BaseModel):
    farm: str
    region: str
    lat: float
    lon: float


class FarmCreate(BaseModel):
    """A farm, in a region; a new region is created from it (then give ``elevation_m``)."""

    farm: str = Field(pattern=ID_PATTERN, examples=["garlic-coop-3"])
    region: str = Field(pattern=ID_PATTERN, examples=["zhongmou"])
    lat: float = Field(description="decimal degrees north, -90..90", examples=[34.72])
    lon: float = Field(description="decimal degrees east, -180..180", examples=[113.98])
    region_name: str | None = Field(default=None, description="a new region's display name")
    elevation_m: float | None = Field(default=None, description="a new region's elevation, m")


class FarmUpdate(BaseModel):
    """What to change of a farm; anything left out stays."""

    model_config = ConfigDict(extra="forbid")

    region: str | None = Field(default=None, pattern=ID_PATTERN)
    lat: float | None = None
    lon: float | None = None
    region_name: str | None = Field(default=None, description="if the region is new")
    elevation_m: float | None = Field(default=None, description="if the region is new, m")


class Deleted(BaseModel):
    """What a delete took with it."""

    farm: str
    field: str | None = Field(description="null: the whole farm")
    fields: int
    seasons: int
    devices: int


class LatestReadings(BaseModel):
    """A field's newest day with telemetry: its start (00:00 China time) and each sensor's
    daily value (mean; rain the day's total)."""

    time: datetime
    readings: dict[str, float]


class FieldPublic(BaseModel):
    """A field, its newest season's plan, and its newest day of telemetry (null: none)."""

    farm: str
    field: str
    region: str
    crop: str
    area_ha: float
    planted_on: date | None = Field(description="of the newest season; null: none planned")
    soil: str
    lat: float
    lon: float
    latest: LatestReadings | None


class FieldCreate(BaseModel):
    """A field and its season, as a row of a fields import (the farm is the path's)."""

    field: str = Field(pattern=ID_PATTERN, examples=["south"])
    crop: str = Field(examples=["garlic"])
    area_ha: float = Field(examples=[2.5])
    planted_on: date = Field(description="the planting (orchards: bud-break) day")
    soil: str = Field(examples=["loam"])
    lat: float = Field(examples=[34.71])
    lon: float = Field(examples=[113.95])
    season: int | None = Field(
        default=None, description="the harvest year; default: the one planted_on gives"
    )


class FieldUpdate(BaseModel):
    """What to change of a field; anything left out stays as in its newest season.

    A new ``planted_on`` of another season plans that season; the plan of a
    season whose harvest is recorded cannot change.
    """

    model_config = ConfigDict(extra="forbid")

    crop: str | None = None
    area_ha: float | None = None
    planted_on: date | None = None
    soil: str | None = None
    lat: float | None = None
    lon: float | None = None


class SeasonPublic(BaseModel):
    """One season of a field: its plan, and its truth once the harvest is reported."""

    season: int = Field(description="the harvest year")
    crop: str
    planted_on: date
    area_ha: float
    yield_t_ha: float | None
    quantity_t: float | None
    harvest_start: date | None
    harvest_peak: date | None
    harvest_end: date | None
    water_stress: float | None
    heat_stress: float | None
    reported_by: str | None = Field(description="who reported the harvest (a key, 'simulator')")
    reported_at: datetime | None


class FieldSeasons(BaseModel):
    farm: str
    field: str
    seasons: list[SeasonPublic]


class TelemetryPoint(BaseModel):
    """One bucket: its start (China time) and each asked sensor's mean, null if none."""

    model_config = ConfigDict(extra="allow")

    time: datetime


class FieldTelemetry(BaseModel):
    farm: str
    field: str
    every: Every
    sensors: list[str]
    points: list[TelemetryPoint]
