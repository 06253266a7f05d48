"""Hourly weather from daily weather: temperature curve, humidity, sunshine, rain timing.

* Air temperature follows Parton & Logan (1981): a sine from the minimum just
  after sunrise to the maximum about 1.9 h after solar noon, then an
  exponential decay through the night to the next day's minimum.
* Humidity comes from the day's dew point (FAO-56 eqs. 11 and 14 in spirit):
  it falls as the air warms in the afternoon and rises again at night; near
  saturation while it rains.
* Global irradiance is the day's radiation shared out in proportion to the
  sine of the sun's elevation, with the same sun as FAO-56 eq. 21, so the
  hours add up to the daily total exactly and there is none at night.
* A day's rain falls as one event at a constant rate over its ``rain_hours``
  from ``rain_start_h``, so a rain gauge's tips over any split of time add up
  to the same total.

Days are local mean solar days at the weather's longitude (hour 12 = mean
solar noon), so every device of a farm sees the same day boundaries.
Functions here take one instant and return floats: the sampling hot path
calls them for every reading.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from firmware_sim.world._sun import SOLAR_CONSTANT_W_M2, sin_elevation
from firmware_sim.world.weather import DailyWeather

DAY_S = 86_400.0
UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Parton & Logan (1981), 150 cm air temperature: lag of the maximum after solar noon (h),
# night-time decay coefficient, lag of the minimum after sunrise (h).
MAX_LAG_H = 1.86
NIGHT_DECAY = 2.2
MIN_LAG_H = -0.17
_DECAY_FLOOR = math.exp(-NIGHT_DECAY)

DayLookup = Callable[[int], tuple[DailyWeather, int]]  # date ordinal -> (weather, index)


@dataclass(frozen=True, slots=True)
class Air:
    """The air at one instant."""

    temp_c: float
    rh_pct: float
    dew_point_c: float
    solar_w_m2: float
    rain_rate_mm_h: float
    cloud_cover: float  # 0 clear .. 1 overcast


def local_day(lon: float, t_s: float) -> tuple[int, float]:
    """The local mean solar day (as a date ordinal) of ``t_s`` and the hour within it."""
    local_s = t_s + lon * 240.0  # 4 minutes of time per degree
    day = math.floor(local_s / DAY_S)
    return day + UNIX_EPOCH_ORDINAL, (local_s - day * DAY_S) / 3600.0


def day_start_s(ordinal: int, lon: float) -> float:
    """UTC epoch seconds of local mean solar midnight starting day ``ordinal``."""
    return (ordinal - UNIX_EPOCH_ORDINAL) * DAY_S - lon * 240.0


def day_of_year(ordinal: int) -> int:
    return ordinal - date(date.fromordinal(ordinal).year, 1, 1).toordinal() + 1


def _sun_hours(lat: float, doy: int) -> tuple[float, float]:
    """Sunrise and sunset (mean solar hours) from FAO-56's daylength (eqs. 24, 25, 34)."""
    delta = 0.409 * math.sin(2.0 * math.pi * doy / 365.0 - 1.39)
    x = -math.tan(math.radians(lat)) * math.tan(delta)
    daylength = 24.0 / math.pi * math.acos(min(1.0, max(-1.0, x)))
    daylength = min(23.0, max(1.0, daylength))
    return 12.0 - daylength / 2.0, 12.0 + daylength / 2.0


def _day_curve(tmin: float, tmax: float, rise: float, set_: float, hour: float) -> float:
    """Parton & Logan's daytime sine, from Tmin just after sunrise."""
    daylength = set_ - rise
    m = hour - rise - MIN_LAG_H
    return tmin + (tmax - tmin) * math.sin(math.pi * m / (daylength + 2.0 * MAX_LAG_H))


def _night_curve(t_sunset: float, tmin_next: float, hours_since: float, night: float) -> float:
    """Exponential cooling from sunset that reaches the next minimum exactly at dawn."""
    decay = math.exp(-NIGHT_DECAY * min(1.0, hours_since / night))
    return (tmin_next - t_sunset * _DECAY_FLOOR + (t_sunset - tmin_next) * decay) / (
        1.0 - _DECAY_FLOOR
    )


def air_temp_c(weather: DailyWeather, index: int, hour: float) -> float:
    """Air temperature at ``hour`` of day ``index`` (needs days ``index - 1`` to ``index + 1``)."""
    ordinal = weather.first_ordinal + index
    lat = weather.lat
    rise, set_ = _sun_hours(lat, day_of_year(ordinal))
    tmin, tmax = weather.tmin_c, weather.tmax_c
    if rise + MIN_LAG_H <= hour <= set_:
        return _day_curve(float(tmin[index]), float(tmax[index]), rise, set_, hour)
    if hour > set_:  # this evening, cooling towards tomorrow's minimum
        t_set = _day_curve(float(tmin[index]), float(tmax[index]), rise, set_, set_)
        night = 24.0 - set_ + _sun_hours(lat, day_of_year(ordinal + 1))[0] + MIN_LAG_H
        return _night_curve(t_set, float(tmin[index + 1]), hour - set_, night)
    # Before dawn: last night's cooling from yesterday's sunset to today's minimum.
    p_rise, p_set = _sun_hours(lat, day_of_year(ordinal - 1))
    t_set = _day_curve(float(tmin[index - 1]), float(tmax[index - 1]), p_rise, p_set, p_set)
    night = 24.0 - p_set + rise + MIN_LAG_H
    return _night_curve(t_set, float(tmin[index]), hour + 24.0 - p_set, night)


def air_temp_extremes_c(
    lookup: DayLookup, lon: float, start_s: float, end_s: float
) -> tuple[float, float]:
    """Lowest and highest air temperature over ``[start_s, end_s]`` (UTC epoch seconds).

    What a station's min/max register holds between two readings. The curve
    of :func:`air_temp_c` rises from each day's minimum (just after sunrise)
    to its maximum (after solar noon) and falls from there to the next
    minimum, so the extremes lie at the interval's ends or at those instants.
    """
    if end_s < start_s:
        raise ValueError(f"the interval ends ({end_s}) before it starts ({start_s})")

    def at(t_s: float) -> float:
        ordinal, hour = local_day(lon, t_s)
        weather, index = lookup(ordinal)
        return air_temp_c(weather, index, hour)

    values = [at(start_s), at(end_s)]
    first, _ = local_day(lon, start_s)
    last, _ = local_day(lon, end_s)
    for ordinal in range(first, last + 1):
        weather, index = lookup(ordinal)
        rise, _ = _sun_hours(weather.lat, day_of_year(ordinal))
        midnight_s = day_start_s(ordinal, lon)
        for hour in (rise + MIN_LAG_H, 12.0 + MIN_LAG_H + MAX_LAG_H):
            if start_s < midnight_s + hour * 3600.0 < end_s:
                values.append(air_temp_c(weather, index, hour))
    return min(values), max(values)


def saturation_vapour_pressure_kpa(temp_c: float) -> float:
    """Saturation vapour pressure (FAO-56 eq. 11)."""
    return 0.6108 * math.exp(17.27 * temp_c / (temp_c + 237.3))


def rain_rate_mm_h(weather: DailyWeather, index: int, hour: float) -> float:
    """Rain rate at ``hour`` of day ``index``: the day's event at a constant rate, or 0."""
    hours = float(weather.rain_hours[index])
    if hours <= 0.0:
        return 0.0
    start = float(weather.rain_start_h[index])
    if start <= hour < start + hours:
        return float(weather.rain_mm[index]) / hours
    return 0.0


def rain_fraction(weather: DailyWeather, index: int, hour: float) -> float:
    """Share of day ``index``'s rain fallen by ``hour`` (1 on dry days)."""
    hours = float(weather.rain_hours[index])
    if hours <= 0.0:
        return 1.0
    return min(1.0, max(0.0, (hour - float(weather.rain_start_h[index])) / hours))


def daylight_fraction(lat: float, ordinal: int, hour: float) -> float:
    """Share of the day's sunshine energy received by ``hour`` (0 before dawn, 1 after dusk).

    The integral of FAO-56's sun from sunrise, in closed form: what drives a
    day's evaporation, so hourly soil moisture dries in daylight.
    """
    doy = day_of_year(ordinal)
    delta = 0.409 * math.sin(2.0 * math.pi * doy / 365.0 - 1.39)
    phi = math.radians(lat)
    a, b = math.sin(phi) * math.sin(delta), math.cos(phi) * math.cos(delta)
    omega_s = math.acos(min(1.0, max(-1.0, -a / b))) if b > 0 else math.pi
    omega = min(omega_s, max(-omega_s, math.pi / 12.0 * (hour - 12.0)))

    def energy(w: float) -> float:
        return a * w + b * math.sin(w)

    total = energy(omega_s) - energy(-omega_s)
    return (energy(omega) - energy(-omega_s)) / total if total > 0 else hour / 24.0


def air_at(weather: DailyWeather, index: int, hour: float, lat: float) -> Air:
    """Everything about the air at ``hour`` of day ``index``; ``lat`` places the sun."""
    ordinal = weather.first_ordinal + index
    temp = air_temp_c(weather, index, hour)
    rate = rain_rate_mm_h(weather, index, hour)
    sunshine = float(weather.sunshine_fraction[index])
    cloud = 1.0 - sunshine
    dew = float(weather.dew_point_c[index])
    if rate > 0.0:
        cloud = max(cloud, 0.9)
        dew = temp - 0.3  # saturated air in the rain
    dew = min(dew, temp)
    rh = 100.0 * saturation_vapour_pressure_kpa(dew) / saturation_vapour_pressure_kpa(temp)

    # Irradiance: the day's transmissivity Rs/Ra times the extraterrestrial beam on a
    # horizontal surface (a rainy day's low sunshine already dims it).
    sin_up = sin_elevation(lat, day_of_year(ordinal), hour)
    solar = 0.0
    if sin_up > 0.0:
        ra = float(weather.extraterrestrial_mj_m2[index])
        transmissivity = float(weather.radiation_mj_m2[index]) / ra if ra > 0 else 0.0
        distance = 1.0 + 0.033 * math.cos(2.0 * math.pi * day_of_year(ordinal) / 365.0)
        solar = transmissivity * SOLAR_CONSTANT_W_M2 * distance * sin_up
    return Air(
        temp_c=temp,
        rh_pct=min(100.0, rh),
        dew_point_c=dew,
        solar_w_m2=solar,
        rain_rate_mm_h=rate,
        cloud_cover=min(1.0, max(0.0, cloud)),
    )


def _rain_events(
    lookup: DayLookup, lon: float, start_s: float, end_s: float
) -> Iterator[tuple[float, float, float]]:
    """(event start s, event end s, rate mm/h) of the rain events overlapping (start_s, end_s]."""
    first, _ = local_day(lon, start_s)
    last, _ = local_day(lon, end_s)
    for ordinal in range(first, last + 1):
        weather, index = lookup(ordinal)
        hours = float(weather.rain_hours[index])
        if hours <= 0.0:
            continue
        begin = day_start_s(ordinal, lon) + float(weather.rain_start_h[index]) * 3600.0
        yield begin, begin + hours * 3600.0, float(weather.rain_mm[index]) / hours


def rain_between_mm(lookup: DayLookup, lon: float, start_s: float, end_s: float) -> float:
    """Rain fallen in ``(start_s, end_s]``: the events' rates integrated over the overlap."""
    total = 0.0
    for begin, end, rate in _rain_events(lookup, lon, start_s, end_s):
        overlap = min(end, end_s) - max(begin, start_s)
        if overlap > 0.0:
            total += rate * overlap / 3600.0
    return total


def rain_tips_between(
    lookup: DayLookup, lon: float, start_s: float, end_s: float, tip_mm: float
) -> int:
    """Tips of a tipping-bucket gauge in ``(start_s, end_s]``.

    The bucket tips each time an event's accumulated rain crosses a multiple
    of the tip size; counting crossings per event makes readings over any
    split of time add up exactly, as a real gauge does.
    """
    tips = 0
    for begin, end, rate in _rain_events(lookup, lon, start_s, end_s):
        lo = min(end, max(start_s, begin)) - begin
        hi = min(end, max(end_s, begin)) - begin
        if hi > lo:
            per_tip_s = tip_mm / rate * 3600.0
            tips += math.floor(hi / per_tip_s) - math.floor(lo / per_tip_s)
    return tips


def hourly(
    weather: DailyWeather, lat: float, first_index: int, days: int
) -> dict[str, NDArray[np.float64]]:
    """Hourly air values (on the hour, local mean solar time) for ``days`` days from
    ``first_index`` (which needs a day of weather either side)."""
    rows = [
        air_at(weather, i, float(h), lat)
        for i in range(first_index, first_index + days)
        for h in range(24)
    ]
    return {
        "hour": np.arange(days * 24, dtype=float),
        "temp_c": np.array([r.temp_c for r in rows]),
        "rh_pct": np.array([r.rh_pct for r in rows]),
        "solar_w_m2": np.array([r.solar_w_m2 for r in rows]),
        "rain_rate_mm_h": np.array([r.rain_rate_mm_h for r in rows]),
        "cloud_cover": np.array([r.cloud_cover for r in rows]),
    }
