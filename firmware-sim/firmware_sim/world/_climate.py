"""Climate normals that drive the weather generator, per place.

The four regions of the design's cases have station climates (monthly mean
temperature, rain and wet days); anywhere else gets a generic climate from
latitude, longitude and elevation, so a scenario may put a farm anywhere, and
a region with a real daily weather file (AquaCrop's format,
:mod:`agrimatch.weather_table`) takes its normals from the file.

Station values are approximate 1981-2010 China Meteorological Administration
normals of the nearest national stations (Zhengzhou for Zhongmou, Korla,
Yan'an/Yanchuan, Mengzi), rounded. The diurnal range on a clear day, the
dry-day sunshine and the dew-point depression are tuned so that simulated
years give those stations' typical diurnal range (~10-13 C), annual sunshine
(about 2000, 2900, 2500 and 2200 h) and humidity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from agrimatch.climate_stations import (
    STATION_PLACES,
    STATION_RADIUS_KM,
    distance_km,
    in_china_box,
)
from agrimatch.weather_table import WeatherTable, read_weather_table

_DAYS_IN_MONTH = (31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MID_MONTH_DOY0 = (15.0, 45.0, 74.0, 105.0, 135.0, 166.0, 196.0, 227.0, 258.0, 288.0, 319.0, 349.0)
_PLACE = {p.key: p for p in STATION_PLACES}
__all__ = [
    "STATIONS",
    "STATION_RADIUS_KM",
    "Climate",
    "ClimateDays",
    "climate_at",
    "climate_days",
    "generic_climate",
]


@dataclass(frozen=True, slots=True)
class Climate:
    """A place's climate normals and the knobs of its weather."""

    key: str  # names the regional weather stream: farms sharing it share rain days
    name: str
    lat: float
    lon: float
    elevation_m: float
    tmean_c: tuple[float, ...]  # 12 monthly means
    rain_mm: tuple[float, ...]  # 12 monthly totals
    wet_days: tuple[float, ...]  # 12 monthly counts of days with rain
    dtr_clear_c: float  # diurnal temperature range on a cloudless day
    sunshine_dry: float  # relative sunshine n/N of a dry day, before the wet-season dimming
    dew_depression_c: float  # Tmin minus dew point on dry days, in the dry season
    anomaly_sd_c: float  # day-to-day weather anomaly of the daily mean temperature
    irrigation: str  # "full" (oasis), "supplemental" or "none" (rainfed)
    default_crop: str  # what a field grows when nobody said
    # FAO-56 asks for eq. 52 (Hargreaves) to be calibrated locally against Penman-Monteith;
    # this factor brings the annual ET0 near the stations' Penman-Monteith totals
    # (approximately: Zhengzhou ~1050, Korla ~1200, Yan'an ~950, Mengzi ~1150 mm).
    et0_calibration: float = 1.0
    rain_persistence: float = 0.3  # lag-1 autocorrelation of wet days (p11 - p01)
    gamma_shape: float = 0.75  # shape of wet-day amounts (Richardson & Wright 1984: < 1)
    # Real daily weather (a region's weather_file): the simulator takes its days from it
    # instead of generating them (firmware_sim.world.weather_file).
    observed: WeatherTable | None = None
    generic: bool = False  # normals estimated from position: no station within the radius


@dataclass(frozen=True, slots=True)
class ClimateDays:
    """Normals interpolated to each day of the year (index 0 = 1 January, 366 entries)."""

    tmean_c: NDArray[np.float64]
    wet_probability: NDArray[np.float64]
    wet_day_mean_mm: NDArray[np.float64]
    p_wet_after_dry: NDArray[np.float64]
    p_wet_after_wet: NDArray[np.float64]
    sunshine_dry: NDArray[np.float64]
    dew_depression_c: NDArray[np.float64]


STATIONS: tuple[Climate, ...] = (
    Climate(
        key="zhongmou",
        name="Zhongmou, Henan (Zhengzhou normals)",
        lat=_PLACE["zhongmou"].lat,
        lon=_PLACE["zhongmou"].lon,
        elevation_m=90.0,
        tmean_c=(0.1, 3.2, 8.9, 15.6, 21.0, 25.8, 27.1, 25.8, 21.3, 15.8, 8.6, 2.5),
        rain_mm=(8.8, 11.6, 28.6, 36.3, 56.4, 68.5, 155.5, 125.5, 73.6, 41.4, 24.4, 8.5),
        wet_days=(3.6, 4.5, 6.4, 6.7, 8.1, 8.7, 12.4, 11.3, 9.0, 7.3, 5.3, 3.6),
        dtr_clear_c=15.0,
        sunshine_dry=0.665,
        dew_depression_c=3.0,
        anomaly_sd_c=2.5,
        irrigation="supplemental",
        default_crop="garlic",
        et0_calibration=0.97,
    ),
    Climate(
        key="korla",
        name="Korla, Xinjiang",
        lat=_PLACE["korla"].lat,
        lon=_PLACE["korla"].lon,
        elevation_m=930.0,
        tmean_c=(-7.5, -2.4, 6.2, 14.6, 20.4, 24.8, 26.3, 24.9, 19.4, 11.2, 2.4, -5.1),
        rain_mm=(1.8, 1.6, 2.2, 2.6, 7.1, 11.3, 12.8, 9.9, 5.1, 2.1, 1.5, 1.5),
        wet_days=(1.7, 1.3, 1.1, 1.5, 3.1, 4.3, 5.0, 3.9, 2.5, 1.3, 1.0, 1.5),
        dtr_clear_c=17.5,
        sunshine_dry=0.73,
        dew_depression_c=9.0,
        anomaly_sd_c=3.0,
        irrigation="full",
        default_crop="fragrant_pear",
        et0_calibration=1.05,
        gamma_shape=0.8,
    ),
    Climate(
        key="yanchuan",
        name="Yanchuan, Shaanxi (Yan'an normals)",
        lat=_PLACE["yanchuan"].lat,
        lon=_PLACE["yanchuan"].lon,
        elevation_m=800.0,
        tmean_c=(-5.5, -1.5, 5.0, 12.5, 18.5, 22.5, 24.2, 22.5, 17.0, 10.5, 3.0, -3.5),
        rain_mm=(4.0, 6.0, 14.0, 25.0, 42.0, 56.0, 107.0, 100.0, 68.0, 34.0, 13.0, 4.0),
        wet_days=(2.5, 3.5, 5.0, 6.0, 8.0, 9.5, 12.0, 11.5, 10.0, 7.0, 4.0, 2.5),
        dtr_clear_c=17.0,
        sunshine_dry=0.80,
        dew_depression_c=4.5,
        anomaly_sd_c=2.8,
        irrigation="none",
        default_crop="jujube",
        et0_calibration=0.9,
    ),
    Climate(
        key="mengzi",
        name="Mengzi, Yunnan",
        lat=_PLACE["mengzi"].lat,
        lon=_PLACE["mengzi"].lon,
        elevation_m=1300.0,
        tmean_c=(12.4, 14.5, 18.2, 21.4, 23.3, 23.3, 23.0, 22.5, 21.3, 18.8, 15.5, 12.6),
        rain_mm=(15.0, 16.0, 27.0, 40.0, 82.0, 130.0, 170.0, 150.0, 85.0, 52.0, 30.0, 12.0),
        wet_days=(4.0, 5.0, 6.0, 8.0, 12.0, 17.0, 20.0, 19.0, 14.0, 11.0, 6.0, 4.0),
        dtr_clear_c=15.0,
        sunshine_dry=0.86,
        dew_depression_c=6.0,
        anomaly_sd_c=1.5,
        irrigation="supplemental",  # dry-season vegetables are watered from ponds
        default_crop="snow_lotus_fruit",
        et0_calibration=0.87,
    ),
)


def climate_at(
    lat: float, lon: float, elevation_m: float = 100.0, weather_file: str | None = None
) -> Climate:
    """The climate of a place: the nearest station's within 250 km, else a generic one.

    With ``weather_file`` (a path to a daily weather file in AquaCrop's format)
    the normals come from the file and the simulator takes its days from it.
    """
    base = _positional(lat, lon, elevation_m)
    if weather_file is None:
        return base
    return _observed(base, round(lat, 2), round(lon, 2), read_weather_table(weather_file))


@lru_cache(maxsize=4096)
def _positional(lat: float, lon: float, elevation_m: float) -> Climate:
    nearest = min(STATIONS, key=lambda s: distance_km(lat, lon, s.lat, s.lon))
    if distance_km(lat, lon, nearest.lat, nearest.lon) <= STATION_RADIUS_KM:
        return nearest
    return generic_climate(round(lat * 2) / 2, round(lon * 2) / 2, elevation_m)


# The Hu Huanyong line (Heihe, Heilongjiang - Tengchong, Yunnan) roughly follows the
# 400 mm isohyet: south-east of it the summer monsoon brings rain, north-west of it the
# land dries out towards the deserts of the interior.
_HU_LINE = ((25.0, 98.5), (50.25, 127.5))
_LAPSE_C_PER_M = 0.0065  # the standard atmosphere's environmental lapse rate


def _hu_line_km(lat: float, lon: float) -> float:
    """Signed distance (km) north-west of the Hu line (negative: south-east of it)."""
    (lat_a, lon_a), (lat_b, lon_b) = _HU_LINE
    km, squeeze = 111.2, math.cos(math.radians((lat_a + lat_b) / 2))
    dx, dy = (lon_b - lon_a) * km * squeeze, (lat_b - lat_a) * km
    px, py = (lon - lon_a) * km * squeeze, (lat - lat_a) * km
    return (py * dx - px * dy) / math.hypot(dx, dy)


def _annual_shape(stations: tuple[Climate, ...]) -> tuple[float, ...]:
    """The mean of the stations' monthly means scaled to 0 in January and 1 in July."""
    scaled = [
        [(t - s.tmean_c[0]) / (s.tmean_c[6] - s.tmean_c[0]) for t in s.tmean_c] for s in stations
    ]
    return tuple(sum(column) / len(column) for column in zip(*scaled, strict=True))


# The northern stations' cycle (Mengzi's is a monsoon highland's: warmest before the rains).
_ANNUAL_SHAPE = _annual_shape(tuple(s for s in STATIONS if s.key != "mengzi"))


def generic_climate(lat: float, lon: float, elevation_m: float) -> Climate:
    """A credible climate from position alone (half-degree cells), calibrated for China.

    January and July means are linear in latitude, elevation (6.5 C/km),
    the interior's dryness and the shelter from the winter monsoon:

    * dryness: distance north-west of the Hu line, saturating at 1,000 km.
      The arid interior's clear skies make summers ~4 C hotter than the
      monsoon-clouded east at the same latitude and height; its rain
      dwindles to a few tens of mm;
    * shelter: west of ~112 E the Tibetan Plateau and the Qinling shield a
      place from the Siberian cold surges that sweep the eastern plains, so
      its winters are ~4.5 C milder (Chengdu against Shanghai, Kashgar
      against Beijing); east of 112 E winters get steeply colder north of
      38 N (Harbin).

    The coefficients minimise the largest error over the January and July
    means of 16 national stations (CMA 1981-2010 normals: the places and values
    are in tests/test_climate_generic.py): every one is reproduced within
    2.5 C. Left out of the fit in turn, January is within 2 C at 10 of them and
    3.4-4.9 C off at Beijing, Kunming, Kashgar, Chengdu, Guangzhou and Harbin;
    July within 3 C except Guangzhou (4.7 C). Outside China (70-135 E, 15-55 N) it
    is a rough guess (no dryness, no shelter).
    """
    in_china = in_china_box(lat, lon)
    dry = min(1.0, max(0.0, _hu_line_km(lat, lon) / 1000.0)) if in_china else 0.3
    shelter = min(1.0, max(0.0, (112.0 - lon) / 8.0)) if in_china else 0.0
    north = abs(lat) - 23.0
    height_c = _LAPSE_C_PER_M * elevation_m
    january = 16.51 - 1.27 * north - 0.03 * max(0.0, abs(lat) - 38.0) ** 2 + 4.53 * shelter
    january += 0.96 * dry - height_c
    july = 30.78 - 0.21 * north + 1.02 * shelter + 3.95 * dry - height_c
    # Between January and July the year follows the stations' own annual cycle: a
    # continental spring and autumn are warmer than a sine through January and July
    # (Korla's April is 5 C above it). South of the equator, six months on.
    shape = _ANNUAL_SHAPE if lat >= 0 else _ANNUAL_SHAPE[6:] + _ANNUAL_SHAPE[:6]
    peak_doy0 = 196.0 if lat >= 0 else 15.0
    phase = [math.cos(2 * math.pi * (d - peak_doy0) / 365.0) for d in _MID_MONTH_DOY0]
    # Annual rain: ~1,800 mm on the south coast, falling northward to ~450 mm, and
    # drying out north-west of the Hu line (Lanzhou ~300 mm, the Tarim Basin ~40-60 mm).
    humid_mm = max(450.0, 1800.0 - 60.0 * max(0.0, north))
    annual_rain = max(40.0, humid_mm * math.exp(-max(0.0, _hu_line_km(lat, lon)) / 400.0))
    if not in_china:
        annual_rain = max(50.0, (1300.0 - 20.0 * max(0.0, north)) * 0.7)
    shares = [1.0 + 0.85 * p for p in phase]  # summer rain
    rain = [annual_rain * s / sum(shares) for s in shares]
    return Climate(
        key=f"grid{lat:+.1f}{lon:+.1f}",
        name=f"generic climate at {lat:.1f}, {lon:.1f}, {elevation_m:.0f} m",
        lat=lat,
        lon=lon,
        elevation_m=elevation_m,
        tmean_c=tuple(january + (july - january) * f for f in shape),
        rain_mm=tuple(rain),
        wet_days=tuple(min(25.0, max(0.5, r / (3.0 + 0.04 * r))) for r in rain),
        dtr_clear_c=14.0 + 4.0 * dry,
        sunshine_dry=0.7 + 0.1 * dry,
        dew_depression_c=3.0 + 6.0 * dry,
        anomaly_sd_c=2.0 + 1.0 * dry,
        irrigation="full" if dry > 0.6 else "supplemental",
        default_crop="maize",
        generic=True,
    )


_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_WET_DAY_MM = 0.1  # a day with at least this much rain is a wet day (CMA's threshold)


@lru_cache(maxsize=64)
def _observed(base: Climate, lat: float, lon: float, table: WeatherTable) -> Climate:
    """``base`` with its normals replaced by the weather file's monthly means.

    The file's place is the region's (``lat``/``lon``); what a file cannot say
    (diurnal range on a clear day, sunshine, humidity, irrigation practice)
    stays the base climate's.
    """
    # datetime64 counts from 1970-01-01: shift the ordinals onto that epoch.
    epoch = (table.first_ordinal - _EPOCH_ORDINAL) + np.arange(len(table))
    month = epoch.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    tmean = (table.tmin_c + table.tmax_c) / 2.0
    count = np.bincount(month, minlength=12).astype(float)
    if np.any(count == 0):
        missing = ", ".join(str(m + 1) for m in np.flatnonzero(count == 0))
        raise ValueError(f"{table.path}: no days in month(s) {missing}: a weather file "
                         "needs at least one whole year")  # fmt: skip
    per_month = np.asarray(_DAYS_IN_MONTH) / count  # scales a month's total to one month
    rain = np.bincount(month, weights=table.rain_mm, minlength=12) * per_month
    wet = np.bincount(month, weights=table.rain_mm >= _WET_DAY_MM, minlength=12) * per_month
    return replace(
        base,
        key=f"file:{table.path}",
        name=f"weather file {table.path.name} ({table.span()})",
        lat=lat,
        lon=lon,
        tmean_c=tuple(float(t) for t in np.bincount(month, weights=tmean, minlength=12) / count),
        rain_mm=tuple(float(r) for r in rain),
        wet_days=tuple(float(max(w, 0.1)) for w in wet),
        observed=table,
        generic=False,
    )


def _daily(monthly: tuple[float, ...] | list[float]) -> NDArray[np.float64]:
    """Monthly values spread over 366 days by periodic linear interpolation between mid-months."""
    return np.interp(np.arange(366.0), _MID_MONTH_DOY0, np.asarray(monthly, float), period=365.0)


@lru_cache(maxsize=256)
def climate_days(climate: Climate) -> ClimateDays:
    """The climate's normals for each day of the year, with WGEN's Markov-chain probabilities.

    With wet-day probability pi and persistence r = p11 - p01, the chain's
    stationary wet share is pi when p01 = pi (1 - r) and p11 = pi + r (1 - pi).
    """
    pi_m = [min(0.95, w / d) for w, d in zip(climate.wet_days, _DAYS_IN_MONTH, strict=True)]
    mean_m = [r / max(w, 0.1) for r, w in zip(climate.rain_mm, climate.wet_days, strict=True)]
    pi = _daily(pi_m)
    r = climate.rain_persistence
    # The wet season dims dry days too (haze, afternoon clouds): sunshine falls with pi.
    sunshine = np.clip(climate.sunshine_dry - 0.5 * pi, 0.2, 0.95)
    return ClimateDays(
        tmean_c=_daily(climate.tmean_c),
        wet_probability=pi,
        wet_day_mean_mm=_daily(mean_m),
        p_wet_after_dry=pi * (1.0 - r),
        p_wet_after_wet=pi + r * (1.0 - pi),
        sunshine_dry=sunshine,
        dew_depression_c=climate.dew_depression_c * (1.0 - pi),
    )
