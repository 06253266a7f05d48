"""The crop catalog: growth, water use, stress, harvest and market facts per crop.

Shared by the simulator (which grows the crops) and the forecaster (which
predicts them), so both reason with the same numbers. The data live in
``crops.toml`` beside this module, every number with its source; they are
loaded once, on import, and validated: a number without a source, a source
naming no known reference, or a value outside its plausible range stops the
import with a message naming the crop and the field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
# Kinds of source that are not a reference: our judgement, or a fit to a calendar.
_SOURCE_KINDS = ("estimate", "calibrated")


class CatalogError(ValueError):
    """The shipped catalog data are inconsistent; the message names the entry and field."""


@dataclass(frozen=True, slots=True)
class OrchardCosts:
    """What changing an orchard's area costs, which an annual crop does not: one-off costs
    of planting or grubbing a hectare, and the seasons a new orchard gives no crop."""

    establishment_cost_cny_per_ha: float
    removal_cost_cny_per_ha: float
    years_to_bearing: int
    sources: Mapping[str, str] = field(default_factory=dict)  # field name -> its source
    basis: str = ""  # what the parameters rest on when no crop model calibrates the crop


@dataclass(frozen=True, slots=True)
class CropSpec:
    """One crop: phenology, water use (FAO-56), yield response (FAO-33), market and cost facts."""

    name: str
    perennial: bool
    sown_before_winter: bool = False  # season Y is sown in autumn of Y-1 (garlic)
    product: str = ""
    planting_window: tuple[str, str] = ("04-01", "05-01")  # month-days (bud break for orchards)
    base_temp_c: float = 10.0
    upper_temp_c: float = 30.0
    gdd_to_maturity: float = 1500.0  # degree-days above base_temp_c
    stage_fractions: tuple[float, float, float, float] = (0.2, 0.3, 0.3, 0.2)
    kc_ini: float = 0.5
    kc_mid: float = 1.1
    kc_end: float = 0.7
    # FAO-56 dual Kc (Table 17): basal coefficient of a full canopy's transpiration.
    kcb_mid: float = 1.0
    root_depth_max_m: float = 1.0
    depletion_fraction: float = 0.5  # FAO-56 p: share of TAW used before stress
    ky: float = 1.0  # FAO-33 yield response factor to water deficit
    potential_yield_t_ha: float = 10.0
    max_canopy_cover: float = 0.9
    water_productivity_g_m2: float = 18.0  # AquaCrop WP*, biomass per unit Tr/ET0
    # Annuals: yield = biomass x harvest_index (dry) / dry_matter_fraction (as sold).
    # Orchards leave them None: a tree's fruit is not a share of one season's biomass.
    harvest_index: float | None = None
    dry_matter_fraction: float | None = None
    # Annuals: the share of that biophysical yield good commercial practice attains in the
    # world's regions (the yield gap: nutrients, pests, stand), so yields meet the catalog's
    # potential_yield_t_ha. 1 for orchards, whose potential already is a commercial one.
    attainable_share: float = 1.0
    heat_stress_threshold_c: float = 35.0  # Tmax above which flowering/yield formation suffers
    heat_sensitivity_per_degree_day: float = 0.01  # yield share lost per deg C d above it
    frost_damage_temp_c: float = 0.0  # Tmin below which growing tissue is damaged
    frost_sensitivity_per_degree_day: float = 0.05
    harvest_spread_days: float = 14.0
    shelf_life_days: float = 30.0
    postharvest_loss_per_week: float = 0.02
    reference_price_cny_per_kg: float = 3.0
    # Total cost of a hectare's season incl. imputed family labour and land rent (NDRC basis).
    production_cost_cny_per_ha: float = 15_000.0
    orchard: OrchardCosts | None = None  # perennial crops only
    sources: Mapping[str, str] = field(default_factory=dict)  # field name -> its source
    basis: str = ""  # what the parameters rest on when no crop model calibrates the crop

    @property
    def stage_ends(self) -> tuple[float, float, float, float]:
        """Cumulative stage fractions: where each FAO-56 stage ends, as a share of maturity."""
        a, b, c, d = self.stage_fractions
        return (a, a + b, a + b + c, a + b + c + d)

    def kc_at(self, progress: NDArray[np.float64]) -> NDArray[np.float64]:
        """The crop coefficient at each thermal-time share of maturity (FAO-56 eq. 66):
        ``kc_ini`` through the initial stage, rising to ``kc_mid`` over development,
        ``kc_mid`` in mid season, falling to ``kc_end`` at maturity."""
        e1, e2, e3, _ = self.stage_ends
        corners = [self.kc_ini, self.kc_ini, self.kc_mid, self.kc_mid, self.kc_end]
        return np.asarray(np.interp(progress, [0.0, e1, e2, e3, 1.0], corners), dtype=np.float64)


# field -> (low, high): a value outside is a typo, not an agronomic surprise.
_RANGES: dict[str, tuple[float, float]] = {
    "base_temp_c": (-5.0, 15.0),
    "upper_temp_c": (15.0, 45.0),
    "gdd_to_maturity": (300.0, 6000.0),
    "kc_ini": (0.1, 1.3),
    "kc_mid": (0.3, 1.4),
    "kc_end": (0.1, 1.3),
    "kcb_mid": (0.1, 1.4),
    "root_depth_max_m": (0.1, 3.0),
    "depletion_fraction": (0.1, 0.9),
    "ky": (0.2, 2.0),
    "potential_yield_t_ha": (0.5, 200.0),
    "max_canopy_cover": (0.1, 1.0),
    "water_productivity_g_m2": (5.0, 40.0),
    "heat_stress_threshold_c": (20.0, 45.0),
    "heat_sensitivity_per_degree_day": (0.0, 0.2),
    "frost_damage_temp_c": (-30.0, 5.0),
    "frost_sensitivity_per_degree_day": (0.0, 0.5),
    "harvest_spread_days": (1.0, 120.0),
    "shelf_life_days": (1.0, 1000.0),
    "postharvest_loss_per_week": (0.0, 0.5),
    "reference_price_cny_per_kg": (0.1, 500.0),
    # From extensive rainfed grain (~200 CNY/mu) to labour-heavy fruit and vegetables.
    "production_cost_cny_per_ha": (3_000.0, 200_000.0),
}
_SOURCED = (*_RANGES, "stage_fractions", "planting_window")
# Sourced like the rest, required of annuals only (see CropSpec.harvest_index).
_ANNUAL_RANGES: dict[str, tuple[float, float]] = {
    "harvest_index": (0.05, 0.95),
    "dry_matter_fraction": (0.02, 1.0),
    "attainable_share": (0.1, 1.0),
}
# Orchards only: what changing their area costs (required when perennial, refused otherwise).
_PERENNIAL_RANGES: dict[str, tuple[float, float]] = {
    "establishment_cost_cny_per_ha": (1_000.0, 500_000.0),
    "removal_cost_cny_per_ha": (0.0, 200_000.0),
    "years_to_bearing": (1.0, 15.0),
}


def check_source(where: str, source: object, references: Mapping[str, str]) -> str:
    """A source string, checked to name a known reference or say it is an estimate/calibration."""
    if not isinstance(source, str) or not source.strip():
        raise CatalogError(f"{where}: missing source")
    head = re.split(r"[\s,:;(]", source.strip(), maxsplit=1)[0]
    if head not in references and head not in _SOURCE_KINDS:
        raise CatalogError(
            f"{where}: source {source!r} must start with a reference "
            f"({', '.join(sorted(references))}) or with 'estimate:' / 'calibrated:'"
        )
    return source


def sourced_value(where: str, entry: object, references: Mapping[str, str]) -> tuple[Any, str]:
    """Split a ``{ value = ..., source = "..." }`` table into its value and checked source."""
    if not isinstance(entry, dict) or set(entry) != {"value", "source"}:
        raise CatalogError(f"{where}: expected {{ value = ..., source = '...' }}, got {entry!r}")
    return entry["value"], check_source(where, entry["source"], references)


def _crop(name: str, data: dict[str, Any], references: Mapping[str, str]) -> CropSpec:
    perennial = bool(data.get("perennial"))
    orchard_keys = set(_PERENNIAL_RANGES) if perennial else set()
    annual_keys = set() if perennial else set(_ANNUAL_RANGES)
    required = {*_SOURCED, *orchard_keys, *annual_keys}
    known = {*required, "perennial", "sown_before_winter", "product", "basis"}
    unknown = sorted(set(data) - known)
    missing = sorted(required - set(data))
    if unknown or missing:
        raise CatalogError(f"crop {name}: unknown fields {unknown}, missing fields {missing}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in sorted(annual_keys):
        where = f"crop {name}.{key}"
        value, sources[key] = sourced_value(where, data[key], references)
        low, high = _ANNUAL_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CatalogError(f"{where}: not a number: {value!r}")
        if not low <= value <= high:
            raise CatalogError(f"{where}: {value} outside the plausible [{low}, {high}]")
        values[key] = float(value)
    for key in _SOURCED:
        where = f"crop {name}.{key}"
        value, sources[key] = sourced_value(where, data[key], references)
        if key in _RANGES:
            low, high = _RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CatalogError(f"{where}: not a number: {value!r}")
            if not low <= value <= high:
                raise CatalogError(f"{where}: {value} outside the plausible [{low}, {high}]")
            values[key] = float(value)
        elif key == "stage_fractions":
            if len(value) != 4 or any(not 0 < v < 1 for v in value):
                raise CatalogError(f"{where}: four fractions in (0, 1) expected, got {value}")
            if abs(sum(value) - 1.0) > 1e-6:
                raise CatalogError(f"{where}: fractions sum to {sum(value)}, not 1")
            values[key] = tuple(float(v) for v in value)
        else:  # planting_window
            if len(value) != 2 or not all(_MONTH_DAY.match(str(v)) for v in value):
                raise CatalogError(f"{where}: two MM-DD month-days expected, got {value}")
            values[key] = (str(value[0]), str(value[1]))
    orchard = _orchard(name, data, references) if perennial else None
    if values["upper_temp_c"] <= values["base_temp_c"]:
        raise CatalogError(f"crop {name}: upper_temp_c must exceed base_temp_c")
    return CropSpec(
        name=name,
        perennial=perennial,
        sown_before_winter=bool(data["sown_before_winter"]),
        product=str(data["product"]),
        basis=str(data.get("basis", "")),
        sources=MappingProxyType(sources),
        orchard=orchard,
        **values,
    )


def _orchard(name: str, data: dict[str, Any], references: Mapping[str, str]) -> OrchardCosts:
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for key, (low, high) in _PERENNIAL_RANGES.items():
        where = f"crop {name}.{key}"
        value, sources[key] = sourced_value(where, data[key], references)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CatalogError(f"{where}: not a number: {value!r}")
        if not low <= value <= high:
            raise CatalogError(f"{where}: {value} outside the plausible [{low}, {high}]")
        values[key] = float(value)
    if values["years_to_bearing"] != int(values["years_to_bearing"]):
        raise CatalogError(f"crop {name}.years_to_bearing: a whole number of seasons expected")
    return OrchardCosts(
        establishment_cost_cny_per_ha=values["establishment_cost_cny_per_ha"],
        removal_cost_cny_per_ha=values["removal_cost_cny_per_ha"],
        years_to_bearing=int(values["years_to_bearing"]),
        sources=MappingProxyType(sources),
    )


def _load() -> tuple[MappingProxyType[str, CropSpec], MappingProxyType[str, str]]:
    text = (resources.files("agrimatch.agronomy") / "crops.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    references = {str(k): str(v) for k, v in data.get("references", {}).items()}
    crops = {name: _crop(name, entry, references) for name, entry in data["crops"].items()}
    return MappingProxyType(crops), MappingProxyType(references)


CROPS, REFERENCES = _load()
"""``CROPS``: crop name -> :class:`CropSpec`; ``REFERENCES``: reference key -> full citation."""
