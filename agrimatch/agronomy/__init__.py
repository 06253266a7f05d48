"""Agronomic reference data shared by the simulator and the forecaster: crops and soils."""

from agrimatch.agronomy.crops import CROPS, CropSpec
from agrimatch.agronomy.soils import SOILS, SoilSpec

__all__ = ["CROPS", "SOILS", "CropSpec", "SoilSpec"]
