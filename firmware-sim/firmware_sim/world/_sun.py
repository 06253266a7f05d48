"""Sun geometry for daily and hourly radiation (FAO-56 chapter 3, eqs. 21-25 and 34).

Everything takes the day of year ``doy`` (1 = 1 January) and works on floats
or numpy arrays alike. Hours are local mean solar time (12 = the sun's
transit, give or take the equation of time, which daily sums do not need).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

SOLAR_CONSTANT_MJ_M2_MIN = 0.0820  # Gsc, FAO-56 eq. 21
SOLAR_CONSTANT_W_M2 = SOLAR_CONSTANT_MJ_M2_MIN * 1e6 / 60.0  # 1367 W/m2


def inverse_distance(doy: ArrayLike) -> NDArray[np.float64]:
    """Inverse relative Earth-Sun distance d_r (FAO-56 eq. 23)."""
    return 1.0 + 0.033 * np.cos(2.0 * np.pi * np.asarray(doy, dtype=float) / 365.0)


def declination_rad(doy: ArrayLike) -> NDArray[np.float64]:
    """Solar declination (FAO-56 eq. 24)."""
    return 0.409 * np.sin(2.0 * np.pi * np.asarray(doy, dtype=float) / 365.0 - 1.39)


def sunset_hour_angle_rad(lat_deg: float, doy: ArrayLike) -> NDArray[np.float64]:
    """Sunset hour angle omega_s (FAO-56 eq. 25), clipped for polar day and night."""
    phi = math.radians(lat_deg)
    x = -math.tan(phi) * np.tan(declination_rad(doy))
    return np.arccos(np.clip(x, -1.0, 1.0))


def extraterrestrial_mj_m2(lat_deg: float, doy: ArrayLike) -> NDArray[np.float64]:
    """Daily extraterrestrial radiation Ra in MJ/m2/day (FAO-56 eq. 21)."""
    phi = math.radians(lat_deg)
    delta = declination_rad(doy)
    omega = sunset_hour_angle_rad(lat_deg, doy)
    return (
        24.0
        * 60.0
        / np.pi
        * SOLAR_CONSTANT_MJ_M2_MIN
        * inverse_distance(doy)
        * (omega * math.sin(phi) * np.sin(delta) + math.cos(phi) * np.cos(delta) * np.sin(omega))
    )


def sin_elevation(lat_deg: float, doy: float, solar_hour: float) -> float:
    """Sine of the sun's elevation at a local mean solar hour (negative below the horizon).

    With the same declination as eq. 21, so that ``Gsc * d_r * max(0, sin_elevation)``
    integrates over the day to exactly Ra: hourly radiation built on it keeps
    the daily total.
    """
    phi = math.radians(lat_deg)
    delta = 0.409 * math.sin(2.0 * math.pi * doy / 365.0 - 1.39)
    omega = math.pi / 12.0 * (solar_hour - 12.0)
    return math.sin(phi) * math.sin(delta) + math.cos(phi) * math.cos(delta) * math.cos(omega)
