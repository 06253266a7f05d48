"""A field's soil: daily water balance in three layers, and soil temperature.

The water balance is FAO-56's root-zone bucket (chapter 8) split into layers so
that the sensors at 10 and 30 cm each read a layer of their own:

* layer 1, 0-20 cm (the 10 cm probe), layer 2, 20-40 cm (the 30 cm probe),
  layer 3 from 40 cm to the crop's deepest roots;
* rain and irrigation infiltrate top-down, filling each layer to saturation;
  a day's water beyond the soil's saturated conductivity runs off;
* water above field capacity drains to the layer below at AquaCrop's rate tau
  (:attr:`agrimatch.agronomy.SoilSpec.drainage_coefficient`), out of the bottom
  as deep percolation;
* reference evapotranspiration ET0 is Hargreaves' (FAO-56 eq. 52); the crop
  transpires ``Kc x cover x ET0`` at most, reduced by FAO-56's water stress
  coefficient Ks (eq. 84) as the root zone dries past the readily available
  water, and draws on the layers its roots reach; bare soil evaporates
  ``KE_MAX x ET0`` on the uncovered share, reduced by Kr (eq. 74) as the top
  layer dries, down to half the wilting point (eq. 73).

Irrigation follows a policy: water when the root-zone depletion passes a share
of the total available water, up to a cap, not more often than a set interval.

The balance is a loop over days (each day needs the day before), written on
plain floats: ~1 microsecond per statement, a crop year in a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from agrimatch.agronomy import SoilSpec

Array = NDArray[np.float64]

LAYER_1_MM = 200.0  # 0-20 cm: read by the 10 cm probe
LAYER_2_MM = 200.0  # 20-40 cm: read by the 30 cm probe
MIN_LAYER_3_MM = 200.0
KE_MAX = 0.9  # bare wet soil evaporates about as fast as the grass reference (FAO-56 ch. 7)
SOIL_TEMP_RESPONSE = 0.3  # share of the gap to the air closed each day at 10 cm (a ~3-day lag)
SOIL_DIURNAL_DAMPING = 0.37  # exp(-z/d), z = 10 cm, damping depth d ~ 10 cm for the daily wave
SOIL_DIURNAL_LAG_H = 3.8  # (z/d) x 24 / (2 pi) hours behind the air at 10 cm


@dataclass(frozen=True, slots=True)
class Irrigation:
    """When and how much a farmer irrigates.

    ``trigger`` is the root-zone depletion, as a share of total available
    water, at which a field is watered; ``refill`` the share of the depletion
    then replaced; at most ``max_mm`` per watering, at least
    ``min_interval_days`` apart. ``trigger`` above 1 means never.
    """

    trigger: float = 2.0
    refill: float = 1.0
    max_mm: float = 60.0
    min_interval_days: int = 7


NO_IRRIGATION = Irrigation()


@dataclass(frozen=True, slots=True)
class SoilWater:
    """Daily results of the water balance; moisture in volumetric percent.

    The ``*_start``/``*_end`` pairs and the day's flows (in percentage points of
    the layer) let hourly values follow a day's rain and drying.
    """

    moisture_10cm_pct: Array  # end of day
    moisture_30cm_pct: Array
    start_10cm_pct: Array  # start of day (the previous day's end)
    start_30cm_pct: Array
    gain_10cm_pct: Array  # infiltrated into layer 1
    et_10cm_pct: Array  # evaporated and transpired from layer 1
    drain_10cm_pct: Array  # drained from layer 1 to layer 2
    gain_30cm_pct: Array  # reached layer 2 (overflow and drainage from above)
    et_30cm_pct: Array
    drain_30cm_pct: Array
    et0_mm: Array
    etc_mm: Array  # potential: Kc x ET0 under crop, KE_MAX x ET0 on bare soil
    eta_mm: Array  # actual: transpiration + evaporation
    transpiration_potential_mm: Array
    transpiration_mm: Array
    evaporation_mm: Array
    irrigation_mm: Array
    runoff_mm: Array
    deep_drainage_mm: Array
    ks: Array  # FAO-56 water stress coefficient (1 = no stress)
    depletion_fraction: Array  # root-zone depletion / total available water


def et0_hargreaves_mm(tmin_c: Array, tmax_c: Array, ra_mj_m2: Array) -> Array:
    """Reference evapotranspiration by Hargreaves (FAO-56 eq. 52), mm/day.

    ET0 = 0.0023 (Tmean + 17.8) (Tmax - Tmin)^0.5 Ra, with Ra as evaporation
    equivalent (x 0.408, FAO-56 eq. 20) and Tmean = (Tmax + Tmin) / 2.
    """
    tmean = (tmin_c + tmax_c) / 2.0
    spread = np.sqrt(np.maximum(tmax_c - tmin_c, 0.0))
    return np.maximum(0.0, 0.0023 * (tmean + 17.8) * spread * 0.408 * ra_mj_m2)


def water_balance(
    soil: SoilSpec,
    rain_mm: Array,
    et0_mm: Array,
    kc: Array,
    cover: Array,
    root_depth_m: Array,
    depletion_p: float,
    *,
    deepest_root_m: float,
    irrigation: Irrigation = NO_IRRIGATION,
    irrigable: NDArray[np.bool_] | None = None,
    water_supply: Array | None = None,
    initial_fill: float = 0.5,
) -> SoilWater:
    """Run the daily balance; all arrays are per day and of one length.

    ``kc`` and ``cover`` (canopy cover 0-1) set the crop's potential
    transpiration; ``root_depth_m`` which layers it draws on; ``depletion_p``
    is FAO-56's p (Table 22), adjusted each day for ET (Table 22 footnote).
    ``irrigable`` marks days the farmer may water (crop in the field) and
    ``water_supply`` scales what the canal or well can give (1 normal; less
    in a drought). ``initial_fill`` places the starting water content between
    wilting point (0) and field capacity (1).
    """
    n = len(rain_mm)
    fc = soil.field_capacity_pct / 100.0
    wp = soil.wilting_point_pct / 100.0
    sat = soil.saturation_pct / 100.0
    air_dry = 0.5 * wp  # FAO-56 eq. 73: the top layer dries to about half the wilting point
    tau = soil.drainage_coefficient
    infiltration_mm = soil.ksat_mm_h * 24.0
    d1, d2 = LAYER_1_MM, LAYER_2_MM
    d3 = max(MIN_LAYER_3_MM, deepest_root_m * 1000.0 - d1 - d2)
    tew = (fc - air_dry) * d1  # total evaporable water of the top layer
    rew = min(soil.readily_evaporable_mm, 0.5 * tew)

    # Everything that does not depend on yesterday is computed for all days at once.
    zr_mm = root_depth_m * 1000.0
    w1 = np.minimum(1.0, zr_mm / d1)  # share of each layer inside the root zone
    w2 = np.clip((zr_mm - d1) / d2, 0.0, 1.0)
    w3 = np.clip((zr_mm - d1 - d2) / d3, 0.0, 1.0)
    taw = (fc - wp) * (w1 * d1 + w2 * d2 + w3 * d3)  # FAO-56 eq. 82
    etc = kc * et0_mm
    tp = etc * cover
    p = np.clip(depletion_p + 0.04 * (5.0 - etc), 0.1, 0.8)  # FAO-56 Table 22 footnote
    ep = KE_MAX * et0_mm * (1.0 - cover)
    may_water = irrigable if irrigable is not None else np.ones(n, dtype=bool)
    supply = water_supply if water_supply is not None else np.ones(n)
    days = zip(
        rain_mm.tolist(),
        (w1 * d1).tolist(),
        (w2 * d2).tolist(),
        (w3 * d3).tolist(),
        taw.tolist(),
        tp.tolist(),
        p.tolist(),
        ep.tolist(),
        may_water.tolist(),
        supply.tolist(),
        strict=True,
    )
    watering = irrigation.trigger <= 1.0
    trigger, refill, cap = irrigation.trigger, irrigation.refill, irrigation.max_mm
    interval = irrigation.min_interval_days

    th1 = th2 = th3 = wp + initial_fill * (fc - wp)
    last_watered = -10_000
    rows: list[tuple[float, ...]] = []
    for i, (rain, r1, r2, r3, taw_i, tp_i, p_i, ep_i, allowed, supply_i) in enumerate(days):
        start1, start2 = th1, th2

        # Irrigation, decided on the morning's depletion.
        water = rain
        irrigated = 0.0
        if watering and allowed and i - last_watered >= interval:
            depletion = (fc - th1) * r1 + (fc - th2) * r2 + (fc - th3) * r3
            if depletion > trigger * taw_i:
                irrigated = (refill * depletion if refill * depletion < cap else cap) * supply_i
                last_watered = i
        water += irrigated

        # Infiltration, top-down to saturation; the rest runs off.
        runoff = water - infiltration_mm if water > infiltration_mm else 0.0
        water -= runoff
        room = (sat - th1) * d1
        gain1 = water if water < room else room
        th1 += gain1 / d1
        water -= gain1
        room = (sat - th2) * d2
        overflow2 = water if water < room else room
        th2 += overflow2 / d2
        water -= overflow2
        room = (sat - th3) * d3
        gain3 = water if water < room else room
        th3 += gain3 / d3
        runoff += water - gain3

        # Drainage of water above field capacity (AquaCrop tau), layer to layer.
        drain1 = drain2 = deep = 0.0
        if th1 > fc:
            drain1 = min(tau * (th1 - fc) * d1, (sat - th2) * d2)
            th1 -= drain1 / d1
            th2 += drain1 / d2
        if th2 > fc:
            drain2 = min(tau * (th2 - fc) * d2, (sat - th3) * d3)
            th2 -= drain2 / d2
            th3 += drain2 / d3
        if th3 > fc:
            deep = tau * (th3 - fc) * d3
            th3 -= deep / d3

        # Transpiration: potential x Ks (FAO-56 eq. 84), from the layers the roots reach.
        depletion = (fc - th1) * r1 + (fc - th2) * r2 + (fc - th3) * r3
        if depletion < 0.0:
            depletion = 0.0
        if taw_i <= 0.0:
            ks = 0.0
        elif depletion <= p_i * taw_i:
            ks = 1.0
        else:
            ks = (taw_i - depletion) / ((1.0 - p_i) * taw_i)
            ks = ks if ks > 0.0 else 0.0
        a1 = (th1 - wp) * r1 if th1 > wp else 0.0
        a2 = (th2 - wp) * r2 if th2 > wp else 0.0
        a3 = (th3 - wp) * r3 if th3 > wp else 0.0
        available = a1 + a2 + a3
        ta = ks * tp_i
        if ta > available:
            ta = available
        t1 = t2 = 0.0
        if ta > 0.0:
            t1, t2 = ta * a1 / available, ta * a2 / available
            th1 -= t1 / d1
            th2 -= t2 / d2
            th3 -= ta * a3 / available / d3

        # Evaporation from the uncovered soil, slowed as the top layer dries (FAO-56 eq. 74).
        dried = (fc - th1) * d1
        kr = 1.0 if dried <= rew else max(0.0, (tew - dried) / (tew - rew))
        evap = kr * ep_i
        evaporable = (th1 - air_dry) * d1
        if evap > evaporable:
            evap = evaporable if evaporable > 0.0 else 0.0
        th1 -= evap / d1

        rows.append(
            (
                th1, th2, start1, start2, gain1, evap + t1, drain1, overflow2 + drain1, t2,
                drain2, ta, evap, irrigated, runoff, deep, ks, depletion,
            )
        )  # fmt: skip

    (
        th1s, th2s, start1s, start2s, gain1s, et1s, drain1s, gain2s, et2s, drain2s,
        ta_s, evap_s, irrigated_s, runoff_s, deep_s, ks_s, depletion_s,
    ) = np.array(rows).T  # fmt: skip
    to_pct_1, to_pct_2 = 100.0 / d1, 100.0 / d2
    return SoilWater(
        moisture_10cm_pct=th1s * 100.0,
        moisture_30cm_pct=th2s * 100.0,
        start_10cm_pct=start1s * 100.0,
        start_30cm_pct=start2s * 100.0,
        gain_10cm_pct=gain1s * to_pct_1,
        et_10cm_pct=et1s * to_pct_1,
        drain_10cm_pct=drain1s * to_pct_1,
        gain_30cm_pct=gain2s * to_pct_2,
        et_30cm_pct=et2s * to_pct_2,
        drain_30cm_pct=drain2s * to_pct_2,
        et0_mm=np.asarray(et0_mm, dtype=float),
        etc_mm=np.where(cover > 0.0, etc, KE_MAX * et0_mm),
        eta_mm=ta_s + evap_s,
        transpiration_potential_mm=tp,
        transpiration_mm=ta_s,
        evaporation_mm=evap_s,
        irrigation_mm=irrigated_s,
        runoff_mm=runoff_s,
        deep_drainage_mm=deep_s,
        ks=ks_s,
        depletion_fraction=np.where(taw > 0.0, depletion_s / np.maximum(taw, 1e-9), 0.0),
    )


def soil_temperature_c(tmean_c: Array, cover: Array) -> Array:
    """Daily mean soil temperature at 10 cm: the air's, lagged and damped.

    An exponential filter (about three days' lag) of the daily air mean; bare
    soil runs up to 1.5 C warmer than the air (it absorbs the sun a canopy
    would intercept), and below freezing the soil stays nearer 0 C (latent
    heat of the freezing water and snow cover insulate it).
    """
    target = tmean_c + 1.5 * (1.0 - cover)
    target = np.where(target < 0.0, 0.5 * target, target)
    k = SOIL_TEMP_RESPONSE
    filtered, _ = lfilter([k], [1.0, -(1.0 - k)], target, zi=[(1.0 - k) * target[0]])
    return np.asarray(filtered)


def moisture_at(
    water: SoilWater, index: int, rain_share: float, sun_share: float, time_share: float
) -> tuple[float, float]:
    """Moisture at 10 and 30 cm part-way through day ``index`` (volumetric %).

    The day's flows are spread over it as they happen: infiltration with the
    rain (``rain_share``: share of the day's rain fallen so far), evaporation
    and uptake with the sun (``sun_share``: share of the day's sunshine so
    far), drainage and the water reaching 30 cm evenly (``time_share``). At
    the day's end the values are the balance's own. Kept between the day's
    start and end states (and the start plus the day's infiltration).
    """
    start10, end10 = float(water.start_10cm_pct[index]), float(water.moisture_10cm_pct[index])
    start30, end30 = float(water.start_30cm_pct[index]), float(water.moisture_30cm_pct[index])
    gain10 = float(water.gain_10cm_pct[index])
    m10 = (
        start10
        + gain10 * rain_share
        - float(water.et_10cm_pct[index]) * sun_share
        - float(water.drain_10cm_pct[index]) * time_share
    )
    m30 = (
        start30
        + (float(water.gain_30cm_pct[index]) - float(water.drain_30cm_pct[index])) * time_share
        - float(water.et_30cm_pct[index]) * sun_share
    )
    m10 = min(max(m10, min(start10, end10)), max(start10 + gain10, end10))
    m30 = min(max(m30, min(start30, end30)), max(start30, end30))
    return m10, m30
