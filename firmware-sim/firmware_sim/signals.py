"""Plausible sensor values for a device at a time: pure functions, no I/O, no state.

Two layers, so the next iteration can swap either without touching the node:

* :func:`site_conditions` is the environment at the device's site (weather and
  soil): climate by latitude and season, a diurnal cycle, weather anomalies
  and rain events shared by a farm, soil moisture driven by past rain.
* :func:`read_sensors` is what the device's sensors report about it: a
  per-device calibration offset and per-sample noise on top, plus the
  device's own battery and radio link.

:func:`sample` composes both. Everything random is a hash of ``(seed, stream,
owner, index)`` (see :mod:`firmware_sim._noise`), so the same ``(spec, seed,
t_s)`` gives the same readings in any process and in any order, and the
sampling interval changes nothing but the rain total (rain since the last
reading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from agrimatch.contract import SENSORS
from agrimatch.contract.telemetry import Reading
from firmware_sim import _noise
from firmware_sim.layout import DeviceSpec, region_centre

DAY_S = 86_400.0
YEAR_DAYS = 365.2422
RAIN_BLOCK_S = 3 * 3600.0  # a rain event is a 3-hour block at a constant rate
SOIL_MEMORY_S = 12 * DAY_S  # rain older than this no longer shows in soil moisture
RAIN_GAUGE_TIP_MM = 0.2  # a tipping-bucket gauge reports rain in whole tips


@dataclass(frozen=True, slots=True)
class SiteConditions:
    """The environment at a device's site at one instant: what its sensors measure."""

    air_temp_c: float
    air_rh_pct: float
    solar_rad_w_m2: float
    rain_mm: float  # fallen during the sampling interval that ends now
    rain_rate_mm_h: float  # falling right now
    soil_moisture_10cm_pct: float
    soil_moisture_30cm_pct: float
    soil_temp_c: float
    leaf_wetness_pct: float
    cloud_cover: float  # 0 clear .. 1 overcast


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


def clear_sky_ghi_w_m2(elevation_deg: float) -> float:
    """Global horizontal irradiance under a clear sky (Haurwitz model); 0 at night."""
    cos_zenith = math.sin(math.radians(elevation_deg))
    if cos_zenith <= 0.0:
        return 0.0
    return 1098.0 * cos_zenith * math.exp(-0.057 / cos_zenith)


# --- climate and weather ----------------------------------------------------------------


def _season(lat: float, t_s: float, lag_days: float = 0.0) -> float:
    """+1 at the height of summer, -1 in deep winter, for either hemisphere."""
    phase = math.cos(2.0 * math.pi * (_day_of_year(t_s) - lag_days - 200.0) / YEAR_DAYS)
    return phase if lat >= 0 else -phase


def _annual_mean_c(lat: float) -> float:
    return 20.0 - 0.4 * (abs(lat) - 20.0)


def _seasonal_amplitude_c(lat: float) -> float:
    return 5.0 + 0.55 * max(0.0, abs(lat) - 20.0)


def _aridity(lon: float) -> float:
    """0 for monsoon China, towards 1 for the inland north-west (Xinjiang)."""
    return min(1.0, max(0.0, (105.0 - lon) / 20.0))


def _cloud_cover(seed: int, farm: str, t_s: float, raining: bool) -> float:
    cover = 0.35 + 0.25 * _noise.smooth(seed, "cloud", farm, t_s, 3 * 3600.0)
    if raining:
        cover = max(cover, 0.85)
    return min(1.0, max(0.0, cover))


@lru_cache(maxsize=1 << 16)
def _rain_rate_mm_h(seed: int, farm: str, block: int, lat: float, lon: float) -> float:
    """Rain rate over one 3-hour block at a farm (0 when dry).

    Memoised: soil moisture looks back over many blocks, and every device of a
    farm asks for the same ones. The cache changes nothing about the results.
    """
    t_s = block * RAIN_BLOCK_S
    # Wetter in summer (monsoon), much drier inland.
    chance = 0.07 * (1.0 + 0.6 * _season(lat, t_s)) * (1.0 - 0.92 * _aridity(lon))
    if _noise.uniform(seed, "rain-event", farm, block) >= chance:
        return 0.0
    return min(60.0, 1.5 * _noise.exponential(seed, "rain-rate", farm, block))


def _rain_between_mm(
    seed: int, farm: str, lat: float, lon: float, start_s: float, end_s: float
) -> float:
    """Rain fallen at a farm in ``(start_s, end_s]``: the rate integrated over the blocks."""
    total = 0.0
    block = math.floor(start_s / RAIN_BLOCK_S)
    while block * RAIN_BLOCK_S < end_s:
        overlap = min(end_s, (block + 1) * RAIN_BLOCK_S) - max(start_s, block * RAIN_BLOCK_S)
        if overlap > 0:
            total += _rain_rate_mm_h(seed, farm, block, lat, lon) * overlap / 3600.0
        block += 1
    return total


def _rain_tips_between(
    seed: int, farm: str, lat: float, lon: float, start_s: float, end_s: float
) -> int:
    """Tips of a rain gauge in ``(start_s, end_s]``.

    A tipping bucket tips each time a block's accumulated rain crosses a
    multiple of the tip size; counting crossings per block makes readings over
    any split of time add up exactly to the same total, as a real gauge does.
    """
    tips = 0
    block = math.floor(start_s / RAIN_BLOCK_S)
    while block * RAIN_BLOCK_S < end_s:
        rate = _rain_rate_mm_h(seed, farm, block, lat, lon)
        if rate > 0.0:
            block_start = block * RAIN_BLOCK_S
            begin = max(start_s, block_start) - block_start
            end = min(end_s, block_start + RAIN_BLOCK_S) - block_start
            per_tip_s = RAIN_GAUGE_TIP_MM / rate * 3600.0
            tips += math.floor(end / per_tip_s) - math.floor(begin / per_tip_s)
        block += 1
    return tips


def _recent_rain_mm(
    seed: int, farm: str, lat: float, lon: float, t_s: float, memory_s: float
) -> float:
    """Rain of the last days, each block weighted by how long ago it fell (exponential decay)."""
    total = 0.0
    last = math.floor(t_s / RAIN_BLOCK_S)
    first = math.floor((t_s - SOIL_MEMORY_S) / RAIN_BLOCK_S)
    for block in range(first, last + 1):
        rate = _rain_rate_mm_h(seed, farm, block, lat, lon)
        if rate == 0.0:
            continue
        end = min(t_s, (block + 1) * RAIN_BLOCK_S)
        fallen = rate * (end - block * RAIN_BLOCK_S) / 3600.0
        total += fallen * math.exp(-(t_s - end) / memory_s)
    return total


def _saturation_vapour_pressure_hpa(temp_c: float) -> float:
    return 6.1094 * math.exp(17.625 * temp_c / (temp_c + 243.04))


def site_conditions(spec: DeviceSpec, seed: int, t_s: float) -> SiteConditions:
    """The environment at the device's site at ``t_s`` (UTC epoch seconds).

    Weather (temperature anomaly, cloud, rain) is shared by a farm; soil depends
    on the field. Nothing here knows the device's sensors or their errors.
    """
    farm = spec.address.farm
    field = f"{farm}/{spec.address.field}"
    # Climate and weather for the region (shared by the farm); the sun for the spot.
    lat, lon = region_centre(spec)
    solar_hour = local_solar_hour(spec.lon, t_s)
    arid = _aridity(lon)

    rain_rate = _rain_rate_mm_h(seed, farm, math.floor(t_s / RAIN_BLOCK_S), lat, lon)
    raining = rain_rate > 0.0
    rain_mm = _rain_between_mm(seed, farm, lat, lon, t_s - spec.interval_s, t_s)
    cloud = _cloud_cover(seed, farm, t_s, raining)

    # Air: climate + multi-day anomaly + diurnal swing damped by cloud (peak mid-afternoon).
    anomaly = 3.0 * _noise.smooth(seed, "temp-anomaly", farm, t_s, 2 * DAY_S)
    daily_mean = _annual_mean_c(lat) + _seasonal_amplitude_c(lat) * _season(lat, t_s) + anomaly
    diurnal_range = (8.0 + 6.0 * arid) * (1.0 - 0.6 * cloud)
    air_temp = daily_mean + diurnal_range / 2.0 * math.cos(2 * math.pi * (solar_hour - 15.0) / 24)

    # Humidity from a dew point that follows the daily mean: as the air warms in the
    # afternoon, relative humidity falls (and rises again at night).
    depression = 4.0 + 10.0 * arid + 2.0 * _noise.smooth(seed, "dryness", farm, t_s, DAY_S)
    if raining:
        depression = 0.5
    dew_point = daily_mean - max(0.5, depression)
    rh = (
        100.0
        * _saturation_vapour_pressure_hpa(dew_point)
        / _saturation_vapour_pressure_hpa(air_temp)
    )

    elevation = solar_elevation_deg(spec.lat, spec.lon, t_s)
    # Kasten-Czeplak cloud attenuation.
    solar = clear_sky_ghi_w_m2(elevation) * (1.0 - 0.75 * cloud**3.4)

    # Soil moisture: a field's dry base plus recent rain, saturating; the deeper layer
    # remembers rain longer and responds less.
    base_10 = 12.0 + 14.0 * _noise.uniform(seed, "soil-base", field, 0) - 4.0 * arid
    base_10 = max(5.0, base_10 - 2.0 * _season(lat, t_s))  # summer evaporation dries it
    wet_10 = _recent_rain_mm(seed, farm, lat, lon, t_s, 2 * DAY_S)
    wet_30 = _recent_rain_mm(seed, farm, lat, lon, t_s, 6 * DAY_S)
    moisture_10 = base_10 + (45.0 - base_10) * (1.0 - math.exp(-wet_10 / 25.0))
    base_30 = base_10 + 3.0
    moisture_30 = base_30 + (42.0 - base_30) * (1.0 - math.exp(-wet_30 / 60.0))

    # Soil temperature: the air's climate, its anomaly a day late and a damped
    # diurnal swing peaking three hours after the air's.
    soil_temp = (
        _annual_mean_c(lat)
        + _seasonal_amplitude_c(lat) * _season(lat, t_s, lag_days=10.0)
        + 0.5 * 3.0 * _noise.smooth(seed, "temp-anomaly", farm, t_s - DAY_S, 2 * DAY_S)
        + 0.35 * diurnal_range / 2.0 * math.cos(2 * math.pi * (solar_hour - 18.0) / 24)
    )

    # Leaves are wet in rain, and with dew when the air is near saturation.
    leaf_wetness = 95.0 if raining else min(100.0, max(0.0, (rh - 88.0) * 8.0))

    return SiteConditions(
        air_temp_c=air_temp,
        air_rh_pct=min(100.0, rh),
        solar_rad_w_m2=solar,
        rain_mm=rain_mm,
        rain_rate_mm_h=rain_rate,
        soil_moisture_10cm_pct=moisture_10,
        soil_moisture_30cm_pct=moisture_30,
        soil_temp_c=soil_temp,
        leaf_wetness_pct=leaf_wetness,
        cloud_cover=cloud,
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
        "air_temp": (site.air_temp_c + offset("air-temp", 0.3) + jitter("air-temp", 0.1), 2),
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
