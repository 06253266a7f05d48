"""Daily weather at a farm: a seeded stochastic weather generator with injectable anomalies.

A WGEN-style generator (Richardson & Wright 1984) on the place's climate
normals (:mod:`._climate`):

* rain occurs by a two-state (wet/dry) Markov chain whose probabilities follow
  the season; wet-day amounts are gamma distributed (shape < 1: many small
  falls, a few downpours);
* the daily mean temperature is the normal plus an AR(1) anomaly, so warm and
  cold spells last several days; the diurnal range widens on sunny days;
* radiation is Angstrom's fraction of extraterrestrial radiation (FAO-56 eqs.
  21 and 35) for the day's relative sunshine, which is high on dry days and
  low on wet ones;
* the dew point sits below Tmin, further in dry air (FAO-56 Annex 6).

Farms near each other share weather: every draw mixes a regional stream
(named by the climate) with the farm's own, so rain days and warm spells are
largely common to a region, as in reality, and a region's bad year hits all
its farms. Each calendar year has its own streams, seeded by ``(seed, farm or
region, year)`` through :mod:`._seeding`, and starts from the previous year's
last 30 days of draws, so the weather runs on smoothly across 1 January and a
year's weather never depends on which span was asked for.

A climate with a real daily weather file (``Climate.observed``, a scenario
region's ``weather_file``) is not generated: its days are the file's
(:mod:`.weather_file`), for the years the file covers.

Anomalies (:class:`agrimatch.scenario.Anomaly`) act on the days they cover,
with two-day ramps at the edges: a drought cuts rain probability and amounts
and dries and warms the air, a heat wave raises Tmax by ~5 C per unit of
intensity, a wet spell makes rain near-daily and heavier, a frost pulls Tmin
to -(1 + 3 x intensity) C.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter
from scipy.special import gammaincinv, ndtr

from agrimatch.scenario import Anomaly
from firmware_sim.world._climate import Climate, climate_at, climate_days
from firmware_sim.world._seeding import stream
from firmware_sim.world._sun import extraterrestrial_mj_m2

SPINUP_DAYS = 30  # a year starts from the previous year's last draws: AR and Markov memory
ANOMALY_RAMP_DAYS = 2
_TEMP_AR1 = 0.75  # day-to-day persistence of temperature anomalies
# Correlation of a farm's draws with its region's: rain days are mostly shared, amounts
# less so (showers are local), temperature almost entirely.
_RHO_OCCURRENCE = 0.92
_RHO_AMOUNT = 0.6
_RHO_TEMPERATURE = 0.9
_RHO_SUNSHINE = 0.7
_MAX_DAILY_RAIN_MM = 300.0

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DailyWeather:
    """Daily weather at a farm, one entry per local solar day from ``first_ordinal``.

    ``first_ordinal`` is :meth:`datetime.date.toordinal` of the first day.
    ``lat``/``lon`` are the place whose sun and climate it is.
    """

    first_ordinal: int
    lat: float
    lon: float
    elevation_m: float
    tmin_c: Array
    tmax_c: Array
    tmean_c: Array
    rain_mm: Array
    radiation_mj_m2: Array  # global (shortwave) radiation Rs
    extraterrestrial_mj_m2: Array  # Ra, FAO-56 eq. 21
    sunshine_fraction: Array  # relative sunshine duration n/N
    dew_point_c: Array
    rain_start_h: Array  # local solar hour the day's rain starts
    rain_hours: Array  # how long it rains (0 on dry days)
    # A weather file's own reference ET0 (FAO-56 Penman-Monteith, as AquaCrop's files
    # give it); None for generated weather, whose ET0 the season computes.
    reference_et0_mm: Array | None = None

    def __len__(self) -> int:
        return len(self.tmin_c)

    @property
    def first_day(self) -> date:
        return date.fromordinal(self.first_ordinal)

    @property
    def dates(self) -> NDArray[np.datetime64]:
        """The days as ``datetime64[D]``."""
        start = np.datetime64(self.first_day.isoformat(), "D")
        return start + np.arange(len(self), dtype="timedelta64[D]")

    def window(self, first_ordinal: int, days: int) -> DailyWeather:
        """The ``days`` days from ``first_ordinal`` (which must lie inside this weather)."""
        i = first_ordinal - self.first_ordinal
        if i < 0 or i + days > len(self):
            raise ValueError("window outside the weather's days")
        return replace(self, first_ordinal=first_ordinal, **_slice_arrays(self, i, i + days))


_ARRAYS = (
    "tmin_c",
    "tmax_c",
    "tmean_c",
    "rain_mm",
    "radiation_mj_m2",
    "extraterrestrial_mj_m2",
    "sunshine_fraction",
    "dew_point_c",
    "rain_start_h",
    "rain_hours",
)


def _slice_arrays(weather: DailyWeather, i: int, j: int) -> dict[str, Any]:
    arrays = {name: getattr(weather, name)[i:j] for name in _ARRAYS}
    et0 = weather.reference_et0_mm
    return {**arrays, "reference_et0_mm": None if et0 is None else et0[i:j]}


def anomalies_for(region: str, anomalies: Iterable[Anomaly]) -> tuple[Anomaly, ...]:
    """The anomalies that hit ``region``."""
    return tuple(a for a in anomalies if a.region == region)


def _ramp(ordinals: NDArray[np.int64], anomaly: Anomaly) -> Array:
    """1 on the anomaly's days, fading linearly to 0 over ANOMALY_RAMP_DAYS either side."""
    outside = np.maximum(anomaly.start.toordinal() - ordinals, ordinals - anomaly.end.toordinal())
    return np.clip(1.0 - outside / (ANOMALY_RAMP_DAYS + 1.0), 0.0, 1.0)


def anomaly_strength(
    first_ordinal: int, days: int, anomalies: Iterable[Anomaly], kind: str
) -> Array:
    """Per day, the strongest ``intensity x ramp`` of the anomalies of ``kind``."""
    ordinals = first_ordinal + np.arange(days)
    out = np.zeros(days)
    for anomaly in anomalies:
        if anomaly.kind == kind:
            out = np.maximum(out, anomaly.intensity * _ramp(ordinals, anomaly))
    return out


def _draws(seed: int, farm: str, climate: Climate, year: int) -> tuple[Array, Array, Array]:
    """A year's standard normals (farm, region) and uniforms (farm), drawn in a fixed order."""
    farm_rng = stream(seed, "weather-farm", farm, year)
    region_rng = stream(seed, "weather-region", climate.key, year)
    farm_normals = farm_rng.standard_normal((5, 366))
    farm_uniforms = farm_rng.random((2, 366))
    region_normals = region_rng.standard_normal((4, 366))
    return farm_normals, farm_uniforms, region_normals


def _mix(rho: float, regional: Array, local: Array) -> Array:
    return rho * regional + math.sqrt(1.0 - rho * rho) * local


def _markov_wet(u: Array, p_wet_after_dry: Array, p_wet_after_wet: Array) -> NDArray[np.bool_]:
    """Wet days of a two-state Markov chain driven by uniforms ``u`` (a loop: each day
    depends on the one before; ~0.1 ms a year)."""
    draws, after_dry, after_wet = u.tolist(), p_wet_after_dry.tolist(), p_wet_after_wet.tolist()
    wet = draws[0] < after_dry[0] / (1.0 - after_wet[0] + after_dry[0])  # stationary start
    out = [False] * len(draws)
    for i, (x, a, b) in enumerate(zip(draws, after_dry, after_wet, strict=True)):
        wet = x < (b if wet else a)
        out[i] = wet
    return np.array(out, dtype=bool)


def _generate(
    climate: Climate,
    first_ordinal: int,
    doy0: NDArray[np.int64],
    farm_normals: Array,
    farm_uniforms: Array,
    region_normals: Array,
    anomalies: Sequence[Anomaly],
) -> DailyWeather:
    days = len(doy0)
    normals = climate_days(climate)
    drought = anomaly_strength(first_ordinal, days, anomalies, "drought")
    heat = anomaly_strength(first_ordinal, days, anomalies, "heat_wave")
    wet_spell = anomaly_strength(first_ordinal, days, anomalies, "wet_spell")

    # Rain occurrence: the season's chain, thinned by drought and heat, thickened by wet spells.
    dry_factor = np.exp(-1.5 * drought - 0.7 * heat)
    wet_factor = np.exp(-1.5 * wet_spell)
    p01 = 1.0 - (1.0 - normals.p_wet_after_dry[doy0] * dry_factor) * wet_factor
    p11 = 1.0 - (1.0 - normals.p_wet_after_wet[doy0] * dry_factor) * wet_factor
    u_occurrence = ndtr(_mix(_RHO_OCCURRENCE, region_normals[0], farm_normals[0]))
    wet = _markov_wet(u_occurrence, p01, p11)

    # Amounts: gamma with the season's wet-day mean, via the inverse CDF so the region's
    # and the farm's draws can be correlated.
    shape = climate.gamma_shape
    u_amount = np.clip(ndtr(_mix(_RHO_AMOUNT, region_normals[1], farm_normals[1])), 1e-9, 1 - 1e-9)
    amount = gammaincinv(shape, u_amount) / shape * normals.wet_day_mean_mm[doy0]
    amount *= np.exp(-0.5 * drought) * (1.0 + 0.4 * wet_spell)
    rain = np.where(wet, np.clip(amount, 0.1, _MAX_DAILY_RAIN_MM), 0.0)

    # Sunshine: bright dry days (brighter in droughts and heat waves), dull wet ones.
    z_sun = _mix(_RHO_SUNSHINE, region_normals[3], farm_normals[3])
    sunny = normals.sunshine_dry[doy0] + 0.15 * z_sun + 0.12 * (drought + heat) - 0.1 * wet_spell
    sunshine = np.where(wet, np.clip(0.15 + 0.08 * z_sun, 0.0, 0.45), np.clip(sunny, 0.03, 0.97))

    # Temperature: normal + AR(1) anomaly (larger in winter), range widening with sunshine.
    eps = _mix(_RHO_TEMPERATURE, region_normals[2], farm_normals[2])
    anomaly = lfilter([math.sqrt(1.0 - _TEMP_AR1**2)], [1.0, -_TEMP_AR1], eps)
    winter = np.cos(2.0 * np.pi * (doy0 - 15.0) / 365.0) * (1.0 if climate.lat >= 0 else -1.0)
    mean_c = normals.tmean_c[doy0] + climate.anomaly_sd_c * (1.0 + 0.25 * winter) * anomaly
    half_range = climate.dtr_clear_c * (0.35 + 0.65 * sunshine) / 2.0
    tmax = mean_c + half_range + 0.8 * drought + 5.0 * heat - 1.0 * wet_spell
    tmin = mean_c - half_range - 0.3 * drought + 2.5 * heat - 0.5 * wet_spell
    ordinals = first_ordinal + np.arange(days)
    for frost in (a for a in anomalies if a.kind == "frost"):
        # A cold-air outbreak: Tmin pulled well below zero, the afternoon cooler too.
        drop = _ramp(ordinals, frost) * np.maximum(0.0, tmin + 1.0 + 3.0 * frost.intensity)
        tmin = tmin - drop
        tmax = tmax - 0.6 * drop
    tmax = np.maximum(tmax, tmin + 0.5)

    # Dew point below Tmin: further in dry air and in droughts, near Tmin on wet days.
    coldness = np.clip(0.4 + mean_c / 25.0, 0.4, 1.2)
    depression = normals.dew_depression_c[doy0] * coldness * np.exp(-wet_spell)
    depression = depression + 2.5 * (drought + heat) + 0.8 * farm_normals[4]
    depression = np.where(wet, 0.5 + 0.3 * np.abs(farm_normals[4]), np.maximum(depression, 0.3))

    ra = extraterrestrial_mj_m2(climate.lat, doy0 + 1)
    # When it rains: longer for larger falls, at any hour of the day.
    hours = np.where(rain > 0, np.clip(1.0 + rain**0.6 * (0.6 + 0.8 * farm_uniforms[0]), 1, 20), 0)
    return DailyWeather(
        first_ordinal=first_ordinal,
        lat=climate.lat,
        lon=climate.lon,
        elevation_m=climate.elevation_m,
        tmin_c=tmin,
        tmax_c=tmax,
        tmean_c=(tmin + tmax) / 2.0,  # FAO-56 eq. 9
        rain_mm=rain,
        radiation_mj_m2=(0.25 + 0.50 * sunshine) * ra,  # Angstrom, FAO-56 eq. 35
        extraterrestrial_mj_m2=ra,
        sunshine_fraction=sunshine,
        dew_point_c=tmin - depression,
        rain_start_h=farm_uniforms[1] * (24.0 - hours),
        rain_hours=hours,
    )


def _days_in(year: int) -> int:
    return date(year + 1, 1, 1).toordinal() - date(year, 1, 1).toordinal()


def _relevant(anomalies: Iterable[Anomaly], first: int, last: int) -> tuple[Anomaly, ...]:
    """The anomalies reaching days [first, last], in a canonical order (one cache entry)."""
    margin = ANOMALY_RAMP_DAYS + 1
    hits = [
        a
        for a in anomalies
        if a.start.toordinal() - margin <= last and a.end.toordinal() + margin >= first
    ]
    return tuple(sorted(hits, key=lambda a: (a.kind, a.start, a.end, a.intensity, a.region)))


def weather_year(
    seed: int, farm: str, climate: Climate, year: int, anomalies: Iterable[Anomaly] = ()
) -> DailyWeather:
    """The farm's weather for calendar ``year`` (1 January to 31 December); memoised."""
    first = date(year, 1, 1).toordinal()
    relevant = _relevant(anomalies, first - SPINUP_DAYS, first + _days_in(year))
    return _weather_year(seed, farm, climate, year, relevant)


@lru_cache(maxsize=2048)
def _weather_year(
    seed: int, farm: str, climate: Climate, year: int, anomalies: tuple[Anomaly, ...]
) -> DailyWeather:
    if climate.observed is not None:
        return _observed_year(seed, farm, climate, year, anomalies)
    days, previous_days = _days_in(year), _days_in(year - 1)
    prev = _draws(seed, farm, climate, year - 1)
    this = _draws(seed, farm, climate, year)
    spin = slice(previous_days - SPINUP_DAYS, previous_days)
    farm_normals, farm_uniforms, region_normals = (
        np.concatenate([p[:, spin], t[:, :days]], axis=1) for p, t in zip(prev, this, strict=True)
    )
    doy0 = np.concatenate([np.arange(previous_days - SPINUP_DAYS, previous_days), np.arange(days)])
    first = date(year, 1, 1).toordinal() - SPINUP_DAYS
    full = _generate(climate, first, doy0, farm_normals, farm_uniforms, region_normals, anomalies)
    return full.window(first + SPINUP_DAYS, days)


def _observed_year(
    seed: int, farm: str, climate: Climate, year: int, anomalies: tuple[Anomaly, ...]
) -> DailyWeather:
    """The year's days from the climate's weather file, as far as the file holds them
    (a file may start or end inside a year): observed, so nothing is injected."""
    table = climate.observed
    assert table is not None
    first = max(date(year, 1, 1), table.first_day)
    last = min(date(year, 12, 31), table.last_day)
    if last < first:  # the file has no day of the year: file_weather says what it covers
        first = last = date(year, 1, 1)
    return _observed(
        seed, farm, climate, first, last.toordinal() - first.toordinal() + 1, anomalies
    )


def _observed(
    seed: int, farm: str, climate: Climate, first: date, days: int, anomalies: Iterable[Anomaly]
) -> DailyWeather:
    # Imported here: weather_file builds this module's DailyWeather (a cycle at the top).
    from firmware_sim.world.weather_file import file_weather

    assert climate.observed is not None
    kinds = sorted({a.kind for a in anomalies})
    if kinds:
        raise ValueError(
            f"{climate.name}: a region with a weather file takes its weather as observed; "
            f"remove its anomalies ({', '.join(kinds)})"
        )
    return file_weather(climate.observed, climate, first, days, seed, farm)


def farm_weather(
    seed: int,
    farm: str,
    climate: Climate,
    start: date,
    end: date,
    anomalies: Iterable[Anomaly] = (),
) -> DailyWeather:
    """The farm's daily weather from ``start`` up to (not including) ``end``."""
    if end <= start:
        raise ValueError("end must be after start")
    anomalies = tuple(anomalies)
    if climate.observed is not None:  # exactly the days asked: a file need not hold whole years
        days = end.toordinal() - start.toordinal()
        relevant = _relevant(anomalies, start.toordinal(), end.toordinal())
        return _observed(seed, farm, climate, start, days, relevant)
    years = [
        weather_year(seed, farm, climate, y, anomalies) for y in range(start.year, end.year + 1)
    ]
    joined = _concatenate(years)
    return joined.window(start.toordinal(), end.toordinal() - start.toordinal())


def _concatenate(parts: Sequence[DailyWeather]) -> DailyWeather:
    if len(parts) == 1:
        return parts[0]
    arrays: dict[str, Any] = {
        name: np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAYS
    }
    et0 = [p.reference_et0_mm for p in parts if p.reference_et0_mm is not None]
    arrays["reference_et0_mm"] = np.concatenate(et0) if len(et0) == len(parts) else None
    return replace(parts[0], **arrays)


def weather_at(
    seed: int,
    farm: str,
    lat: float,
    lon: float,
    start: date,
    end: date,
    anomalies: Iterable[Anomaly] = (),
    elevation_m: float = 100.0,
) -> DailyWeather:
    """:func:`farm_weather` for a farm at ``lat``/``lon``, with the climate of that place."""
    return farm_weather(seed, farm, climate_at(lat, lon, elevation_m), start, end, anomalies)


def around(
    seed: int, farm: str, climate: Climate, day: date, anomalies: Iterable[Anomaly] = ()
) -> tuple[DailyWeather, int]:
    """Weather covering ``day`` and its neighbours, and the index of ``day`` in it.

    What hourly values need (the night before and after a day); memoised per year,
    so it is cheap to call for every sample.
    """
    this = weather_year(seed, farm, climate, day.year, anomalies)
    index = day.toordinal() - this.first_ordinal
    if 0 < index < len(this) - 1:
        return this, index
    start = day - timedelta(days=1)
    span = farm_weather(seed, farm, climate, start, day + timedelta(days=2), anomalies)
    return span, 1
