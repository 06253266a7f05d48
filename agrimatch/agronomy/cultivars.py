"""Degree-day requirements by crop and region: the one place both simulator and forecaster ask.

A crop's catalog ``gdd_to_maturity`` is its default cultivar. Where a
region grows a cultivar of a different length (a full-season spring maize
hybrid in a cool, long-day region against Henan's short summer maize), the
catalog's ``[regional_gdd.<crop>]`` table names it per region id, each value
with its source like every other number in the catalog.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

from agrimatch.agronomy.crops import CROPS, REFERENCES, CatalogError, CropSpec, sourced_value

_GDD_RANGE = (300.0, 6000.0)


def _load() -> Mapping[str, Mapping[str, float]]:
    text = (resources.files("agrimatch.agronomy") / "crops.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text).get("regional_gdd", {})
    out: dict[str, Mapping[str, float]] = {}
    for crop, regions in table.items():
        if crop not in CROPS:
            raise CatalogError(f"regional_gdd.{crop}: no such crop in the catalog")
        by_region: dict[str, float] = {}
        for region, entry in regions.items():
            where = f"regional_gdd.{crop}.{region}"
            value, _ = sourced_value(where, entry, REFERENCES)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CatalogError(f"{where}: not a number: {value!r}")
            if not _GDD_RANGE[0] <= value <= _GDD_RANGE[1]:
                raise CatalogError(f"{where}: {value} outside the plausible {list(_GDD_RANGE)}")
            by_region[str(region)] = float(value)
        out[crop] = MappingProxyType(by_region)
    return MappingProxyType(out)


REGIONAL_GDD = _load()
"""crop name -> region id -> degree-days to maturity of the cultivar grown there."""


def gdd_to_maturity(crop: CropSpec | str, region: str | None = None) -> float:
    """Degree-days (above the crop's base, McMaster & Wilhelm) from planting or bud break
    to maturity for the cultivar grown in ``region``; the catalog's default cultivar when
    the region has none of its own (or no region is given)."""
    spec = CROPS[crop] if isinstance(crop, str) else crop
    if region is not None:
        regional = REGIONAL_GDD.get(spec.name, {}).get(region)
        if regional is not None:
            return regional
    return spec.gdd_to_maturity
