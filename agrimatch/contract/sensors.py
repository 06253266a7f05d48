"""Canonical sensors, their SenML units and physical ranges.

A reading outside its range cannot be a real measurement (a broken sensor or a
corrupted message), so ingest rejects it instead of letting it skew forecasts.
Ranges are the sensors' physical or standardised limits, not agronomic norms.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class SensorSpec:
    name: str
    unit: str  # SenML unit symbol (RFC 8428 section 12.1 registry)
    minimum: float
    maximum: float
    description: str


_SPECS = (
    SensorSpec("soil_moisture_10cm", "%", 0.0, 100.0, "volumetric water content at 10 cm"),
    SensorSpec("soil_moisture_30cm", "%", 0.0, 100.0, "volumetric water content at 30 cm"),
    SensorSpec("soil_temp", "Cel", -40.0, 70.0, "soil temperature at 10 cm"),
    # Record lows/highs on Earth are about -89 and +57 °C.
    SensorSpec("air_temp", "Cel", -90.0, 60.0, "air temperature at 2 m"),
    # A station's min/max register: a node that samples every few hours (or sleeps to
    # save its battery) still reports the dawn frost and the afternoon heat in between.
    SensorSpec("air_temp_min", "Cel", -90.0, 60.0, "lowest air temperature since the last reading"),
    SensorSpec(
        "air_temp_max", "Cel", -90.0, 60.0, "highest air temperature since the last reading"
    ),
    SensorSpec("air_rh", "%RH", 0.0, 100.0, "relative humidity"),
    # Rain since the previous reading; 500 mm exceeds any recorded hourly total.
    SensorSpec("rain", "mm", 0.0, 500.0, "rain since the last reading"),
    # Top-of-atmosphere irradiance is ~1361 W/m2; cloud-edge enhancement adds some.
    SensorSpec("solar_rad", "W/m2", 0.0, 1600.0, "global horizontal irradiance"),
    SensorSpec("leaf_wetness", "%", 0.0, 100.0, "share of the sensor surface wet"),
    SensorSpec("battery", "V", 0.0, 5.0, "battery voltage (Li-ion cell)"),
    # 3GPP TS 36.133 / 38.133 reporting ranges.
    SensorSpec("rsrp", "dBm", -156.0, -31.0, "reference signal received power"),
    SensorSpec("sinr", "dB", -23.0, 40.0, "signal to interference and noise ratio"),
    SensorSpec("latency", "ms", 0.0, 600_000.0, "uplink round-trip latency"),
    # Canopy camera: NDVI is a ratio, SenML unit "/", bounded by its definition.
    SensorSpec("ndvi", "/", -1.0, 1.0, "normalised difference vegetation index of the canopy"),
)

SENSORS: MappingProxyType[str, SensorSpec] = MappingProxyType({s.name: s for s in _SPECS})

_NODE_HEALTH = ("battery", "rsrp", "sinr", "latency")
# What each kind of node measures.
FIELD_NODE_SENSORS: tuple[str, ...] = tuple(n for n in SENSORS if n != "ndvi")
CAMERA_NODE_SENSORS: tuple[str, ...] = ("ndvi", *_NODE_HEALTH)
