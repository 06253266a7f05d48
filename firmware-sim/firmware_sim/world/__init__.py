"""The simulated physical world: weather, soil and crops, and the truth of each harvest.

Pure and vectorised (numpy over days), deterministic for a seed:

* :mod:`.weather`: daily weather per farm (a seeded stochastic generator on
  the region's climate, with injectable anomalies);
* :mod:`.diurnal`: hourly values from the daily weather (air temperature,
  humidity, sunshine, rain timing);
* :mod:`.soil`: a field's water balance (FAO-56 bucket in three layers,
  moisture at 10 and 30 cm) and soil temperature;
* :mod:`.crop`: phenology by degree-days, canopy, biomass, vegetation index,
  and water, heat and frost stress on yield;
* :mod:`.season`: one field-season tied together, :class:`SeasonTruth`.

Imports only the ``agrimatch`` kernel (agronomy catalogs, scenario models).
"""

from firmware_sim.world.season import (
    FarmSite,
    FieldSetup,
    SeasonDaily,
    SeasonTruth,
    scenario_seasons,
    simulate_field_season,
    simulate_season,
)
from firmware_sim.world.weather import DailyWeather, farm_weather, weather_at

__all__ = [
    "DailyWeather",
    "FarmSite",
    "FieldSetup",
    "SeasonDaily",
    "SeasonTruth",
    "farm_weather",
    "scenario_seasons",
    "simulate_field_season",
    "simulate_season",
    "weather_at",
]
