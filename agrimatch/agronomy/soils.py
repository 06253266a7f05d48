"""Soil texture classes and their water-holding properties (values land with the soil model)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class SoilSpec:
    name: str


_SOILS = tuple(
    SoilSpec(n) for n in ("sand", "sandy_loam", "loam", "silt_loam", "clay_loam", "clay")
)

SOILS: MappingProxyType[str, SoilSpec] = MappingProxyType({s.name: s for s in _SOILS})
