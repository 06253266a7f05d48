"""Where the simulated world has station climates, and how far a place is from them.

The world model (``firmware_sim.world``) has measured climate normals for four
stations (the design's four regions); a place farther than
:data:`STATION_RADIUS_KM` from all of them gets a generic climate estimated
from its position. The kernel knows only the stations' positions, so that a
scenario can say on load which of its regions fall back to the generic climate
(:attr:`agrimatch.scenario.Scenario.climate_fallbacks`); the normals themselves
stay with the world model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STATION_RADIUS_KM = 250.0  # a farm this close to a station takes its climate


def in_china_box(lat: float, lon: float) -> bool:
    """Whether a place lies where the generic climate is fitted (China: 70-135 E, 15-55 N);
    elsewhere it is a rough guess."""
    return 70.0 < lon < 135.0 and 15.0 < lat < 55.0


@dataclass(frozen=True, slots=True)
class StationPlace:
    key: str
    name: str
    lat: float
    lon: float


STATION_PLACES: tuple[StationPlace, ...] = (
    StationPlace("zhongmou", "Zhongmou, Henan (Zhengzhou normals)", 34.72, 113.98),
    StationPlace("korla", "Korla, Xinjiang", 41.76, 86.15),
    StationPlace("yanchuan", "Yanchuan, Shaanxi (Yan'an normals)", 36.88, 110.19),
    StationPlace("mengzi", "Mengzi, Yunnan", 23.37, 103.38),
)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, spherical Earth of radius 6,371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, a)))


def nearest_station(lat: float, lon: float) -> tuple[StationPlace, float]:
    """The station nearest to ``lat``/``lon`` and its distance in km."""
    station = min(STATION_PLACES, key=lambda s: distance_km(lat, lon, s.lat, s.lon))
    return station, distance_km(lat, lon, station.lat, station.lon)
