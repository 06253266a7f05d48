"""Plausible sensor values for a device at a time: pure functions, no I/O.

Two layers, so the next iteration can swap either without touching the node:

* :func:`site_conditions` is the environment at the device's site, from the
  world model (:mod:`firmware_sim.world`): the farm's weather from a seeded
  weather generator on its region's climate, made hourly; soil moisture at 10
  and 30 cm and soil temperature from the field's daily water balance; the
  crop's canopy and vegetation index.
* :func:`read_sensors` is what the device's sensors report about it: a
  per-device calibration offset and per-sample noise on top, plus the
  device's own battery and radio link.

:func:`sample` composes both. Everything random is seeded by stable hashes of
``(seed, farm or field or device, ...)``, so the same ``(spec, seed, t_s)``
gives the same readings in any process and in any order, and the sampling
interval changes nothing but what is counted since the last reading: the rain
total and the lowest and highest air temperature.

Fast enough for thousands of devices a minute: a field's season (weather,
soil, crop: a few milliseconds) is simulated once and memoised; a reading
then indexes its day and interpolates the hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

from agrimatch.agronomy import CROPS, SOILS
from agrimatch.agronomy.seasons import season_year_of
from agrimatch.contract import SENSORS
from agrimatch.contract.telemetry import Reading
from agrimatch.scenario import Anomaly
from firmware_sim import _noise
from firmware_sim.layout import DeviceSpec, region_centre
from firmware_sim.world import diurnal
from firmware_sim.world import soil as world_soil
from firmware_sim.world._climate import Climate, climate_at
from firmware_sim.world.season import FarmSite, FieldSetup, simulate_season
from firmware_sim.world.weather import DailyWeather, around

DAY_S = 86_400.0
RAIN_GAUGE_TIP_MM = 0.2  # a tipping-bucket gauge reports rain in whole tips


@dataclass(frozen=True, slots=True)
class SiteConditions:
    """The environment at a device's site at one instant: what its sensors measure."""

    air_temp_c: float
    air_temp_min_c: float  # lowest during the sampling interval that ends now
    air_temp_max_c: float  # highest during it
    air_rh_pct: float
    solar_rad_w_m2: float
    rain_mm: float  # fallen during the sampling interval that ends now
    rain_rate_mm_h: float  # falling right now
    soil_moisture_10cm_pct: float
    soil_moisture_30cm_pct: float
    soil_temp_c: float
    leaf_wetness_pct: float
    cloud_cover: float  # 0 clear .. 1 overcast
    canopy_cover: float = 0.0  # share of the ground the crop shades
    ndvi: float = 0.14  # what a canopy camera's vegetation index reads (0.1-0.9)


# --- sun ------------------------------------------------------------------------------


def _day_of_year(t_s: float) -> float:
    moment = datetime.fromtimestamp(t_s, tz=UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.timetuple().tm_yday + (t_s - midnight.timestamp()) / DAY_S


def local_solar_hour(lon: float, t_s: float) -> float:
    """Apparent solar time in hours (12.0 = sun at its highest) at longitude ``lon``."""
    doy = _day_of_year(t_s)
    b = 2.0 * math.pi * (doy - 81.0) / 364.0
    equation_of_time_min = 9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)
    utc_hour = (t_s % DAY_S) / 3600.0
    return (utc_hour + lon / 15.0 + equation_of_time_min / 60.0) % 24.0


def solar_elevation_deg(lat: float, lon: float, t_s: float) -> float:
    """Sun elevation above the horizon in degrees (negative at night)."""
    doy = _day_of_year(t_s)
    declination = math.radians(-23.44) * math.cos(2.0 * math.pi * (doy + 10.0) / 365.0)
    hour_angle = math.radians(15.0 * (local_solar_hour(lon, t_s) - 12.0))
    phi = math.radians(lat)
    sin_elevation = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(
        declination
    ) * math.cos(hour_angle)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_elevation))))


# --- the world at the device's site ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Place:
    """The world's view of a device: its farm, its field and their climate."""

    farm: FarmSite
    field: FieldSetup
    climate: Climate


@lru_cache(maxsize=1 << 14)
def _place(spec: DeviceSpec) -> _Place:
    """Weather is the farm's, at its region's centre; the field is what the spec says
    (or the region's signature crop on loam, planted at the start of its window)."""
    lat, lon = region_centre(spec)
    climate = climate_at(lat, lon, spec.elevation_m, spec.weather_file)
    crop = spec.crop or climate.default_crop
    if crop not in CROPS:
        raise ValueError(f"device {spec.device}: unknown crop {crop!r}")
    soil = spec.soil or "loam"
    if soil not in SOILS:
        raise ValueError(f"device {spec.device}: unknown soil {soil!r}")
    farm = FarmSite(
        farm=spec.address.farm,
        region=spec.region,
        lat=lat,
        lon=lon,
        elevation_m=spec.elevation_m,
        anomalies=spec.anomalies,
        weather_file=spec.weather_file,
    )
    field = FieldSetup(
        field=spec.address.field,
        crop=crop,
        planting=spec.planting or CROPS[crop].planting_window[0],
        soil=soil,
    )
    return _Place(farm=farm, field=field, climate=climate)


# A farm's climate and anomalies, as last seen by site_conditions, so that the rain gauge
# counts the same rain: read_sensors passes only the farm and its location, not the spec's
# anomalies. Without an entry (read_sensors called before any site_conditions for the
# farm) the gauge reads the farm's weather without anomalies. A memo, not state: the
# entry is a function of the DeviceSpec.
_FARM_WEATHER: dict[tuple[int, str], tuple[Climate, tuple[Anomaly, ...]]] = {}


def _day_lookup(
    seed: int, farm: str, climate: Climate, anomalies: tuple[Anomaly, ...]
) -> diurnal.DayLookup:
    def lookup(ordinal: int) -> tuple[DailyWeather, int]:
        return around(seed, farm, climate, date.fromordinal(ordinal), anomalies)

    return lookup


def _rain_tips_between(
    seed: int, farm: str, lat: float, lon: float, start_s: float, end_s: float
) -> int:
    """Tips of the farm's rain gauge in ``(start_s, end_s]``: whole tips per rain event,
    so readings over any split of time add up (:func:`diurnal.rain_tips_between`)."""
    climate, anomalies = _FARM_WEATHER.get((seed, farm)) or (climate_at(lat, lon), ())
    lookup = _day_lookup(seed, farm, climate, anomalies)
    return diurnal.rain_tips_between(lookup, climate.lon, start_s, end_s, RAIN_GAUGE_TIP_MM)


def site_conditions(spec: DeviceSpec, seed: int, t_s: float) -> SiteConditions:
    """The environment at the device's site at ``t_s`` (UTC epoch seconds).

    Weather is shared by a farm; soil and crop belong to the field. Nothing
    here knows the device's sensors or their errors.
    """
    place = _place(spec)
    farm, climate = place.farm, place.climate
    _FARM_WEATHER[(seed, farm.farm)] = (climate, farm.anomalies)
    lookup = _day_lookup(seed, farm.farm, climate, farm.anomalies)

    ordinal, hour = diurnal.local_day(climate.lon, t_s)
    weather, index = lookup(ordinal)
    air = diurnal.air_at(weather, index, hour, spec.lat)
    rain_mm = diurnal.rain_between_mm(lookup, climate.lon, t_s - spec.interval_s, t_s)
    temp_low, temp_high = diurnal.air_temp_extremes_c(
        lookup, climate.lon, t_s - spec.interval_s, t_s
    )

    # The field's season holding today: soil water and crop, day by day.
    crop = CROPS[place.field.crop]
    day = date.fromordinal(ordinal)
    season = simulate_season(
        farm, place.field, season_year_of(crop, place.field.planting, day), seed
    )
    daily = season.daily
    k = ordinal - daily.first_ordinal
    moisture_10, moisture_30 = world_soil.moisture_at(
        daily.water,
        k,
        rain_share=diurnal.rain_fraction(weather, index, hour),
        sun_share=diurnal.daylight_fraction(climate.lat, ordinal, hour),
        time_share=hour / 24.0,
    )
    cover = float(daily.canopy_cover[k])

    # Soil temperature: the day's mean at 10 cm plus the air's diurnal swing, damped and
    # late (a canopy shades the soil and damps it further).
    lag_ordinal, lag_hour = diurnal.local_day(
        climate.lon, t_s - world_soil.SOIL_DIURNAL_LAG_H * 3600.0
    )
    lag_weather, lag_index = lookup(lag_ordinal)
    swing = diurnal.air_temp_c(lag_weather, lag_index, lag_hour) - float(
        lag_weather.tmean_c[lag_index]
    )
    soil_temp = (
        float(daily.soil_temp_c[k]) + world_soil.SOIL_DIURNAL_DAMPING * (1.0 - 0.5 * cover) * swing
    )

    # Leaves are wet in rain, and with dew when the air is near saturation.
    raining = air.rain_rate_mm_h > 0.0
    leaf_wetness = 95.0 if raining else min(100.0, max(0.0, (air.rh_pct - 88.0) * 8.0))

    return SiteConditions(
        air_temp_c=air.temp_c,
        air_temp_min_c=temp_low,
        air_temp_max_c=temp_high,
        air_rh_pct=air.rh_pct,
        solar_rad_w_m2=air.solar_w_m2,
        rain_mm=rain_mm,
        rain_rate_mm_h=air.rain_rate_mm_h,
        soil_moisture_10cm_pct=moisture_10,
        soil_moisture_30cm_pct=moisture_30,
        soil_temp_c=soil_temp,
        leaf_wetness_pct=leaf_wetness,
        cloud_cover=air.cloud_cover,
        canopy_cover=cover,
        ndvi=float(daily.ndvi[k]),
    )


# --- the device's view ------------------------------------------------------------------


def _battery_v(spec: DeviceSpec, seed: int, t_s: float, cloud: float) -> float:
    """A solar-charged Li-ion cell: charges through the day, drains at night."""
    device = spec.device
    solar_hour = local_solar_hour(spec.lon, t_s)
    charge_cycle = math.sin(2 * math.pi * (solar_hour - 9.0) / 24.0)  # top ~15 h, bottom ~3 h
    health = 0.1 * _noise.normal(seed, "battery-health", device, 0)
    state_of_charge = 0.6 + 0.3 * charge_cycle * (1.0 - 0.5 * cloud) + health
    return 3.5 + 0.7 * min(1.0, max(0.0, state_of_charge))


def read_sensors(spec: DeviceSpec, seed: int, t_s: float, site: SiteConditions) -> list[Reading]:
    """What the device's sensors report at ``t_s`` about ``site``, one reading per sensor.

    Each device has its own calibration offsets (fixed for its life) and each
    sample its own noise; values are rounded to the sensor's resolution and
    kept within the contract's physical ranges. Rain is a tipping-bucket count
    over the sampling interval ending at ``t_s``; it reads the farm's rain
    events directly, because whole tips only add up across readings when
    counted against the rain's own timeline.
    """
    device = spec.device
    t_ms = round(t_s * 1000)
    lat, lon = region_centre(spec)
    tips = _rain_tips_between(seed, spec.address.farm, lat, lon, t_s - spec.interval_s, t_s)
    rain_gauge_mm = tips * RAIN_GAUGE_TIP_MM

    def offset(stream: str, sigma: float) -> float:
        return sigma * _noise.normal(seed, f"offset-{stream}", device, 0)

    def jitter(stream: str, sigma: float) -> float:
        return sigma * _noise.normal(seed, f"noise-{stream}", device, t_ms)

    # The radio link: a device's distance to its cell sets the mean signal; slow
    # fading and rain fade move it; interference and signal set the SINR.
    rsrp = (
        -100.0
        + 12.0 * _noise.normal(seed, "rsrp-site", device, 0)
        + 3.0 * _noise.smooth(seed, "rsrp-fade", device, t_s, 600.0)
        - 0.3 * site.rain_rate_mm_h
        + jitter("rsrp", 1.5)
    )
    sinr = (
        0.5 * (rsrp + 115.0)
        + 3.0
        + 3.0 * _noise.smooth(seed, "interference", device, t_s, 1800.0)
        + jitter("sinr", 1.5)
    )
    latency = (
        10.0
        + 15.0 * _noise.uniform(seed, "latency-base", device, 0)
        + 6.0 * max(0.0, 5.0 - sinr)
        + 4.0 * _noise.exponential(seed, "latency-tail", device, t_ms)
    )

    air_offset = offset("air-temp", 0.3)
    air_temp = site.air_temp_c + air_offset + jitter("air-temp", 0.1)
    values = {
        "soil_moisture_10cm": (
            site.soil_moisture_10cm_pct + offset("sm10", 1.0) + jitter("sm10", 0.3),
            2,
        ),
        "soil_moisture_30cm": (
            site.soil_moisture_30cm_pct + offset("sm30", 1.0) + jitter("sm30", 0.3),
            2,
        ),
        "soil_temp": (site.soil_temp_c + offset("soil-temp", 0.2) + jitter("soil-temp", 0.05), 2),
        "air_temp": (air_temp, 2),
        # The same thermometer's register: its calibration, noise of its own samples, and
        # never above (min) or below (max) the reading it ends with.
        "air_temp_min": (min(air_temp, site.air_temp_min_c + air_offset + jitter("t-min", 0.1)), 2),
        "air_temp_max": (max(air_temp, site.air_temp_max_c + air_offset + jitter("t-max", 0.1)), 2),
        "air_rh": (site.air_rh_pct + offset("air-rh", 1.5) + jitter("air-rh", 1.0), 1),
        "rain": (rain_gauge_mm, 1),
        "solar_rad": (
            site.solar_rad_w_m2 * (1.0 + 0.02 * offset("solar", 1.0) + jitter("solar", 0.01)),
            1,
        ),
        "leaf_wetness": (site.leaf_wetness_pct + jitter("leaf", 2.0), 1),
        "battery": (_battery_v(spec, seed, t_s, site.cloud_cover) + jitter("battery", 0.005), 3),
        "rsrp": (rsrp, 1),
        "sinr": (sinr, 1),
        "latency": (latency, 1),
        "ndvi": (site.ndvi + jitter("ndvi", 0.01), 3),
    }
    readings = []
    for name in spec.sensors:
        raw, digits = values[name]
        limits = SENSORS[name]
        # Clamping stands for the sensor's saturation, and keeps noise on a value at the
        # edge of its range (0 W/m2 at night, 100 %RH in fog) a valid reading.
        value = round(min(limits.maximum, max(limits.minimum, raw)), digits)
        readings.append(Reading(sensor=name, time_ms=t_ms, value=value))
    return readings


def sample(spec: DeviceSpec, seed: int, t_s: float) -> list[Reading]:
    """Readings of every sensor of ``spec`` at ``t_s``: deterministic for ``(spec, seed, t_s)``."""
    return read_sensors(spec, seed, t_s, site_conditions(spec, seed, t_s))
