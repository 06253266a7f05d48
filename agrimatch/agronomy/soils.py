"""Soil texture classes and their water-holding properties.

Loaded once from ``soils.toml`` beside this module (Saxton & Rawls 2006
texture-class averages, FAO-56 Table 19), every number with its source, and
validated: the water contents must be ordered wilting point < field capacity
< saturation.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

from agrimatch.agronomy.crops import CatalogError, sourced_value

_FIELDS = (
    "saturation_pct",
    "field_capacity_pct",
    "wilting_point_pct",
    "ksat_mm_h",
    "readily_evaporable_mm",
)


@dataclass(frozen=True, slots=True)
class SoilSpec:
    """A soil texture class: volumetric water contents in percent, conductivity in mm/h."""

    name: str
    saturation_pct: float = 46.0
    field_capacity_pct: float = 28.0
    wilting_point_pct: float = 14.0
    ksat_mm_h: float = 15.5
    readily_evaporable_mm: float = 9.0  # FAO-56 REW: evaporation runs unhindered until this
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def available_water_pct(self) -> float:
        """Plant-available water: field capacity minus wilting point (volumetric %)."""
        return self.field_capacity_pct - self.wilting_point_pct

    @property
    def drainage_coefficient(self) -> float:
        """Share of the water above field capacity that drains out of a layer in a day.

        AquaCrop's tau = 0.0866 * Ksat^0.35 with Ksat in mm/day, capped at 1
        (Raes et al., AquaCrop reference manual): sands drain in a day, clays
        hold excess water for a week or more.
        """
        return min(1.0, 0.0866 * (self.ksat_mm_h * 24.0) ** 0.35)


def _soil(name: str, data: dict[str, Any], references: Mapping[str, str]) -> SoilSpec:
    if set(data) != set(_FIELDS):
        raise CatalogError(
            f"soil {name}: fields must be exactly {list(_FIELDS)}, got {sorted(data)}"
        )
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for key in _FIELDS:
        value, sources[key] = sourced_value(f"soil {name}.{key}", data[key], references)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise CatalogError(f"soil {name}.{key}: a positive number expected, got {value!r}")
        values[key] = float(value)
    if not values["wilting_point_pct"] < values["field_capacity_pct"] < values["saturation_pct"]:
        raise CatalogError(f"soil {name}: needs wilting point < field capacity < saturation")
    if values["saturation_pct"] >= 100.0:
        raise CatalogError(f"soil {name}: saturation must be below 100 %")
    return SoilSpec(name=name, sources=MappingProxyType(sources), **values)


def _load() -> MappingProxyType[str, SoilSpec]:
    text = (resources.files("agrimatch.agronomy") / "soils.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    references = {str(k): str(v) for k, v in data.get("references", {}).items()}
    return MappingProxyType(
        {name: _soil(name, entry, references) for name, entry in data["soils"].items()}
    )


SOILS: MappingProxyType[str, SoilSpec] = _load()
