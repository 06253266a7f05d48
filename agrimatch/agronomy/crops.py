"""The crop catalog (placeholder values until the catalog with sources lands).

Every number here must carry its source; see ``crops.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class CropSpec:
    name: str
    perennial: bool


_CROPS = (
    CropSpec("garlic", False),
    CropSpec("fragrant_pear", True),
    CropSpec("jujube", True),
    CropSpec("snow_lotus_fruit", False),  # yacon, Smallanthus sonchifolius
    CropSpec("maize", False),
    CropSpec("potato", False),
    CropSpec("tomato", False),
)

CROPS: MappingProxyType[str, CropSpec] = MappingProxyType({c.name: c for c in _CROPS})
