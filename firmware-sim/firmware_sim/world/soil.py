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
* reference evapotranspiration ET0 is Hargreaves' (FAO-56 eq. 52) unless given;
  evapotranspiration follows FAO-56's dual crop coefficient: the crop
  transpires ``Kcb x CC* x ET0`` at most (CC* AquaCrop's cover adjusted for
  micro-advection), reduced by FAO-56's water stress coefficient Ks (eq. 84) as
  the root zone dries past the readily available water, and draws on the layers
  its roots reach; the soil evaporates ``Ke x ET0`` (eq. 71) from the exposed
  share, reduced by Kr (eq. 74) as the 10 cm evaporation layer dries (eq. 77),
  down to half the wilting point (eq. 73);
* the canopy is part of the balance: it grows towards the unstressed crop's
  cover as fast as water stress lets it expand, senesces early under severe
  stress, and a crop whose canopy senesced to nothing is dead (AquaCrop's
  expansion, stomatal and senescence thresholds, scaled on FAO-56's p).

Irrigation follows a policy: water when the root-zone depletion passes a share
of the total available water, up to a cap, not more often than a set interval.

The balance is a loop over days (each day needs the day before), written on
plain floats: ~1 microsecond per statement, a crop year in a few milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from agrimatch.agronomy import SoilSpec

Array = NDArray[np.float64]

LAYER_1_MM = 200.0  # 0-20 cm: read by the 10 cm probe
LAYER_2_MM = 200.0  # 20-40 cm: read by the 30 cm probe
MIN_LAYER_3_MM = 200.0
KC_MAX = 1.2  # FAO-56 eq. 72 without the wind/humidity term: wet bare soil's upper Kc
EVAPORATION_LAYER_MM = 100.0  # FAO-56 Ze: the surface layer that dries by evaporation
# AquaCrop's thresholds against FAO-56's p (maize 0.55, potato 0.35, tomato 0.40): its
# stomata close from ~0.69 / 0.60 / 0.55 of TAW and its canopy senesces from ~0.69 /
# 0.70 / 0.70 — about a third and two-fifths of the way from p to the wilting point.
STOMATAL_SHIFT = 0.3
SENESCENCE_SHIFT = 0.4
STRESS_SHAPE = 3.0  # AquaCrop's fshape_w for expansion and senescence (maize 2.9-2.7)
_EXP_STRESS_1 = math.exp(STRESS_SHAPE) - 1.0
EVAPORATION_SHAPE = 4.0  # AquaCrop's fevap: stage-2 evaporation falls off convexly
_EXP_SHAPE_1 = math.exp(EVAPORATION_SHAPE) - 1.0
CANOPY_CATCH_UP = 0.05  # share of a stunted canopy's gap to its potential regrown per day
EARLY_SENESCENCE_RATE = 0.08  # share of the canopy lost per day at the wilting point
DEATH_PEAK_COVER = 0.10  # only a crop that had a canopy can be killed by losing it
DEATH_COVER = 0.01  # ... and it is dead when less than this is left
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
    etc_mm: Array  # potential: Kc x ET0 under crop, KC_MAX x ET0 on bare soil
    eta_mm: Array  # actual: transpiration + evaporation
    transpiration_potential_mm: Array
    transpiration_mm: Array
    evaporation_mm: Array
    irrigation_mm: Array
    runoff_mm: Array
    deep_drainage_mm: Array
    ks: Array  # FAO-56 water stress coefficient (1 = no stress)
    depletion_fraction: Array  # root-zone depletion / total available water
    canopy_cover: Array  # the actual canopy, after water stress (0-1)
    dead: NDArray[np.bool_]  # the crop has died of drought (its canopy senesced to nothing)


def et0_hargreaves_mm(tmin_c: Array, tmax_c: Array, ra_mj_m2: Array) -> Array:
    """Reference evapotranspiration by Hargreaves (FAO-56 eq. 52), mm/day.

    ET0 = 0.0023 (Tmean + 17.8) (Tmax - Tmin)^0.5 Ra, with Ra as evaporation
    equivalent (x 0.408, FAO-56 eq. 20) and Tmean = (Tmax + Tmin) / 2.
    """
    tmean = (tmin_c + tmax_c) / 2.0
    spread = np.sqrt(np.maximum(tmax_c - tmin_c, 0.0))
    return np.maximum(0.0, 0.0023 * (tmean + 17.8) * spread * 0.408 * ra_mj_m2)


def _convex_ks(depletion: float, upper: float, lower: float) -> float:
    """AquaCrop's stress coefficient: 1 until the root-zone depletion (share of TAW)
    passes ``upper``, 0 from ``lower``, convex between (shape STRESS_SHAPE): mild
    stress first, then steeply more."""
    if depletion <= upper:
        return 1.0
    if depletion >= lower:
        return 0.0
    relative = (depletion - upper) / (lower - upper)
    return 1.0 - (math.exp(STRESS_SHAPE * relative) - 1.0) / _EXP_STRESS_1


def canopy_star(cover: Array) -> Array:
    """AquaCrop's cover adjusted for micro-advection and sheltering, CC* = 1.72 CC - CC^2
    + 0.30 CC^3 (reference manual ch. 3): a half-closed canopy transpires more than half."""
    return np.clip(1.72 * cover - cover**2 + 0.30 * cover**3, 0.0, 1.0)


def water_balance(
    soil: SoilSpec,
    rain_mm: Array,
    et0_mm: Array,
    cover_potential: Array,
    root_depth_m: Array,
    depletion_p: float,
    *,
    kcb_full: float,
    deepest_root_m: float,
    kc: Array | None = None,
    irrigation: Irrigation = NO_IRRIGATION,
    irrigable: NDArray[np.bool_] | None = None,
    water_supply: Array | None = None,
    initial_fill: float = 0.5,
    can_die: bool = True,
) -> SoilWater:
    """Run the daily balance with the canopy it feeds; all arrays are per day, one length.

    ``cover_potential`` is the canopy an unstressed crop would have (the
    phenology's); the actual canopy grows towards it as fast as water stress
    lets it expand, senesces early under severe stress (and, with
    ``can_die``, the crop dies when it has none left), and it is the actual
    canopy that transpires and shades the soil: FAO-56's dual Kc, with the
    basal ``kcb_full`` scaled by AquaCrop's CC* (:func:`canopy_star`) for
    transpiration and the soil's own evaporation ``Ke = min(Kr (Kc_max - Kcb),
    few Kc_max)`` (FAO-56 eq. 71) from the exposed share of the soil, slowed as
    the evaporation layer dries (eq. 74, 77). ``root_depth_m`` sets which layers
    the crop draws on; ``depletion_p`` is FAO-56's p (Table 22), adjusted each
    day for ET (Table 22 footnote). ``kc`` is the single crop coefficient curve,
    used only to report potential ETc. ``irrigable`` marks days the farmer may
    water (crop in the field) and ``water_supply`` scales what the canal or well
    can give (1 normal; less in a drought). ``initial_fill`` places the starting
    water content between wilting point (0) and field capacity (1).
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
    tew = (fc - air_dry) * EVAPORATION_LAYER_MM  # FAO-56 eq. 73, Ze = 0.10 m
    rew = min(soil.readily_evaporable_mm, 0.5 * tew)

    # Everything that does not depend on yesterday is computed for all days at once.
    zr_mm = root_depth_m * 1000.0
    w1 = np.minimum(1.0, zr_mm / d1)  # share of each layer inside the root zone
    w2 = np.clip((zr_mm - d1) / d2, 0.0, 1.0)
    w3 = np.clip((zr_mm - d1 - d2) / d3, 0.0, 1.0)
    taw = (fc - wp) * (w1 * d1 + w2 * d2 + w3 * d3)  # FAO-56 eq. 82
    tp_unstressed = kcb_full * canopy_star(cover_potential) * et0_mm
    etc_single = (kc if kc is not None else kcb_full * cover_potential) * et0_mm
    p = np.clip(depletion_p + 0.04 * (5.0 - etc_single), 0.1, 0.8)  # FAO-56 Table 22 footnote
    may_water = irrigable if irrigable is not None else np.ones(n, dtype=bool)
    supply = water_supply if water_supply is not None else np.ones(n)
    previous_potential = np.concatenate(([0.0], cover_potential[:-1]))
    days = zip(
        rain_mm.tolist(),
        et0_mm.tolist(),
        (w1 * d1).tolist(),
        (w2 * d2).tolist(),
        (w3 * d3).tolist(),
        taw.tolist(),
        p.tolist(),
        cover_potential.tolist(),
        previous_potential.tolist(),
        may_water.tolist(),
        supply.tolist(),
        strict=True,
    )
    watering = irrigation.trigger <= 1.0
    trigger, refill, cap = irrigation.trigger, irrigation.refill, irrigation.max_mm
    interval = irrigation.min_interval_days

    th1 = th2 = th3 = wp + initial_fill * (fc - wp)
    de = min(tew, max(0.0, (fc - th1) * EVAPORATION_LAYER_MM))
    cc = ceiling = 0.0
    peak = 0.0
    dead = False
    last_watered = -10_000
    rows: list[tuple[float, ...]] = []
    for i, (rain, et0, r1, r2, r3, taw_i, p_i, pot, pot_before, allowed, supply_i) in enumerate(
        days
    ):
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
        de = de - gain1 if de > gain1 else 0.0  # FAO-56 eq. 77: rain re-wets the surface
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

        # Root-zone depletion and its stress coefficients: stomata close past p (FAO-56
        # eq. 84); leaf expansion slows earlier and stops later (AquaCrop's p_exp, here
        # 0.25 p to p + 0.15); the canopy senesces early past p_sen = p + 0.3 (1 - p).
        depletion = (fc - th1) * r1 + (fc - th2) * r2 + (fc - th3) * r3
        if depletion < 0.0:
            depletion = 0.0
        f = depletion / taw_i if taw_i > 0.0 else 1.0
        p_sto = p_i + STOMATAL_SHIFT * (1.0 - p_i)
        ks = _convex_ks(f, p_sto, 1.0)
        ks_exp = _convex_ks(f, 0.25 * p_i, min(0.95, p_i + 0.15))
        p_sen = p_i + SENESCENCE_SHIFT * (1.0 - p_i)

        # The canopy: expansion towards the potential, slowed by stress; natural decline
        # with the potential; early senescence under severe stress lowers what it can
        # regrow to; a canopy senesced to nothing is a dead crop.
        if dead:
            cc = 0.0
        else:
            if pot >= pot_before and pot > 0.0:
                reach = pot if pot < ceiling + (pot - pot_before) else ceiling + (pot - pot_before)
                ceiling = reach if reach > ceiling else ceiling
                grow = ks_exp * ((pot - pot_before) + CANOPY_CATCH_UP * max(0.0, reach - cc))
                cc = cc + grow
                cc = cc if cc < reach else reach
            elif pot < cc:
                cc = pot
            if f > p_sen and cc > 0.0:
                loss = EARLY_SENESCENCE_RATE * (1.0 - _convex_ks(f, p_sen, 1.0)) * cc
                cc -= loss
                ceiling -= loss
            peak = cc if cc > peak else peak
            if can_die and peak >= DEATH_PEAK_COVER and cc < DEATH_COVER and f > p_sen:
                dead = True
                cc = 0.0

        # Transpiration: the actual canopy's basal potential x Ks, from the layers the
        # roots reach.
        cc_star = 1.72 * cc - cc * cc + 0.30 * cc * cc * cc
        kcb = kcb_full * cc_star
        tp_i = kcb * et0
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

        # Soil evaporation (FAO-56 dual Kc): the energy the canopy leaves, on the exposed
        # share, slowed as the evaporation layer dries past REW.
        kc_max = KC_MAX if kcb + 0.05 < KC_MAX else kcb + 0.05
        few = 1.0 - cc_star  # the exposed share, sheltered as AquaCrop shelters it
        de = de if de > (fc - th1) * EVAPORATION_LAYER_MM else (fc - th1) * EVAPORATION_LAYER_MM
        if de <= rew:
            kr = 1.0
        else:  # stage 2: AquaCrop's convex drying curve (fevap = 4) on FAO-56's Wrel
            wrel = (tew - de) / (tew - rew)
            kr = (math.exp(EVAPORATION_SHAPE * wrel) - 1.0) / _EXP_SHAPE_1 if wrel > 0.0 else 0.0
        ke = kr * (kc_max - kcb)
        ke = ke if ke < few * kc_max else few * kc_max
        evap = ke * et0 if ke > 0.0 else 0.0
        evaporable = (th1 - air_dry) * d1
        if evap > evaporable:
            evap = evaporable if evaporable > 0.0 else 0.0
        th1 -= evap / d1
        de = de + evap if de + evap < tew else tew

        rows.append(
            (
                th1, th2, start1, start2, gain1, evap + t1, drain1, overflow2 + drain1, t2,
                drain2, ta, evap, irrigated, runoff, deep, ks, depletion, cc, float(dead),
            )
        )  # fmt: skip

    (
        th1s, th2s, start1s, start2s, gain1s, et1s, drain1s, gain2s, et2s, drain2s,
        ta_s, evap_s, irrigated_s, runoff_s, deep_s, ks_s, depletion_s, cc_s, dead_s,
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
        etc_mm=np.where(cover_potential > 0.0, etc_single, KC_MAX * et0_mm),
        eta_mm=ta_s + evap_s,
        transpiration_potential_mm=tp_unstressed,
        transpiration_mm=ta_s,
        evaporation_mm=evap_s,
        irrigation_mm=irrigated_s,
        runoff_mm=runoff_s,
        deep_drainage_mm=deep_s,
        ks=ks_s,
        depletion_fraction=np.where(taw > 0.0, depletion_s / np.maximum(taw, 1e-9), 0.0),
        canopy_cover=cc_s,
        dead=dead_s > 0.5,
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
