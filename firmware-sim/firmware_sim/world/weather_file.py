"""A real daily weather file as the simulator's :class:`DailyWeather`.

A file in AquaCrop's format (:mod:`agrimatch.weather_table`) gives each day's
Tmin, Tmax, rain and reference ET0. The rest of what the simulator needs is
filled from the file's own days and the place's climate, as the generator
(:mod:`.weather`) would make it:

* radiation from the day's temperature range, Hargreaves' radiation formula
  (FAO-56 eq. 50, k_Rs 0.16 for an interior site), capped at the clear-sky
  radiation (eq. 37); the relative sunshine is Angstrom's (eq. 35) inverted;
* the dew point below Tmin by the climate's dry-season depression, narrowing
  with the wet-day share and close to Tmin on a wet day (FAO-56 Annex 6);
* rain starts at a seeded hour and lasts longer for larger falls.

The file's temperatures and rain are used as they are: two farms of a region
with a weather file see the same observed weather.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from agrimatch.weather_table import WeatherTable
from firmware_sim.world._climate import Climate, climate_days
from firmware_sim.world._seeding import stream
from firmware_sim.world._sun import extraterrestrial_mj_m2
from firmware_sim.world.weather import DailyWeather

_K_RS = 0.16  # FAO-56 eq. 50's adjustment coefficient for interior locations
_ANGSTROM_A, _ANGSTROM_B = 0.25, 0.50  # FAO-56 eq. 35 without local calibration


class WeatherFileCoverageError(ValueError):
    """The simulator asked for days a weather file does not hold."""


def file_weather(
    table: WeatherTable, climate: Climate, first: date, days: int, seed: int, farm: str
) -> DailyWeather:
    """``days`` days of the file's weather from ``first``, filled out for the simulator."""
    last = date.fromordinal(first.toordinal() + days - 1)
    if days < 1 or not table.covers(first, last):
        raise WeatherFileCoverageError(
            f"the weather file {table.path} covers {table.span()}, not {first} to {last}: "
            "give a file covering every simulated season (from 60 days before its planting "
            "to the next planting), or simulate only the seasons it covers"
        )
    i = first.toordinal() - table.first_ordinal
    tmin = table.tmin_c[i : i + days].copy()
    tmax = table.tmax_c[i : i + days].copy()
    rain = table.rain_mm[i : i + days].copy()
    ordinals = first.toordinal() + np.arange(days)
    doy0 = np.array([date.fromordinal(int(o)).timetuple().tm_yday - 1 for o in ordinals])
    ra = extraterrestrial_mj_m2(climate.lat, doy0 + 1)
    clear_sky = (0.75 + 2e-5 * climate.elevation_m) * ra  # FAO-56 eq. 37
    radiation = np.minimum(_K_RS * np.sqrt(np.maximum(tmax - tmin, 0.0)) * ra, clear_sky)
    with np.errstate(divide="ignore", invalid="ignore"):
        sunshine = np.clip((radiation / ra - _ANGSTROM_A) / _ANGSTROM_B, 0.0, 1.0)
    sunshine = np.where(ra > 0, sunshine, 0.0)  # polar night

    normals = climate_days(climate)
    wet = rain >= 0.1
    mean_c = (tmin + tmax) / 2.0
    # As the generator: a larger depression in warm dry air, about 0.5 C on a wet day.
    coldness = np.clip(0.4 + mean_c / 25.0, 0.4, 1.2)
    depression = np.where(wet, 0.5, np.maximum(normals.dew_depression_c[doy0] * coldness, 0.3))

    # Per calendar year and day, so a day's rain hours do not depend on the span asked.
    years = np.array([date.fromordinal(int(o)).year for o in ordinals])
    u = np.empty((2, days))
    for year in np.unique(years):
        draws = stream(seed, "weather-file", farm, int(year)).random((2, 366))
        u[:, years == year] = draws[:, doy0[years == year]]
    hours = np.where(wet, np.clip(1.0 + rain**0.6 * (0.6 + 0.8 * u[0]), 1, 20), 0.0)
    return DailyWeather(
        first_ordinal=first.toordinal(),
        lat=climate.lat,
        lon=climate.lon,
        elevation_m=climate.elevation_m,
        tmin_c=tmin,
        tmax_c=tmax,
        tmean_c=mean_c,  # FAO-56 eq. 9, as the generator
        rain_mm=rain,
        radiation_mj_m2=radiation,
        extraterrestrial_mj_m2=ra,
        sunshine_fraction=sunshine,
        dew_point_c=tmin - depression,
        rain_start_h=u[1] * (24.0 - hours),
        rain_hours=hours,
        reference_et0_mm=table.et0_mm[i : i + days].copy(),
    )
