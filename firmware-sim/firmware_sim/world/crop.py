"""A crop in a field through one season: phenology, canopy, biomass, stress and yield.

* Phenology runs on thermal time: growing degree-days from planting (bud break
  for orchards), McMaster & Wilhelm's method (temperatures clamped to the
  crop's base and upper temperatures before averaging). FAO-56's four stages
  are shares of the degree-days to maturity (the catalog's
  ``stage_fractions``); maturity is the day the sum reaches
  ``gdd_to_maturity``.
* The crop coefficient follows FAO-56's Kc curve (fig. 25, eq. 66): flat
  ``kc_ini``, a ramp to ``kc_mid``, flat, a ramp to ``kc_end``.
* Canopy cover grows in the initial and development stages, holds, and
  senesces in the late stage; water stress (a running mean of FAO-56's Ks)
  shrinks it. Biomass is AquaCrop's ``WP* x sum(Tr / ET0)``; the vegetation
  index is NDVI from cover by Trout et al. (2008), fc = 1.26 NDVI - 0.18.
* Yield is the catalog's potential times FAO-33's water-production factor
  ``1 - Ky (1 - Ta/Tp)`` (transpiration over planting-to-maturity; Doorenbos
  & Kassam 1979, FAO-66 eq. 2.1), a heat factor ``exp(-s x HDD)`` (HDD:
  degree-days of Tmax above the crop's threshold in the mid-season stage, i.e.
  flowering and yield formation; about ``1 - s x HDD`` for mild heat, never
  below zero for extreme), a frost factor of the same form (degree-days of
  Tmin below the damage temperature from emergence or bud break until
  flowering ends) and, for a crop that never matured, the square of the
  share of thermal time it got.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from agrimatch.agronomy import CropSpec
from agrimatch.agronomy.frost import (
    EMERGED,
    HARD_FROST_C,
    first_killing_frost,
    yield_kept_at_end,
)

Array = NDArray[np.float64]

INITIAL_COVER = 0.03  # share of CCx at emergence (annuals)
DORMANT_COVER = 0.08  # a leafless orchard: trunks, branches, orchard floor
SENESCENT_COVER = 0.4  # share of CCx left green at maturity (annuals)
LEAF_FALL_DAYS = 30  # orchards keep their leaves this long after harvest, barring frost
# Share of the harvest index lost per unit of (1 - Ks) over flowering: AquaCrop's
# pollination failure and FAO-33's larger Ky at flowering (maize 1.5 vs 1.25 overall).
FLOWERING_WATER_SENSITIVITY = 0.3
SEEDLING_ROOT_M = 0.25  # sown 5-15 cm deep, roots reach the second layer within days


@dataclass(frozen=True, slots=True)
class Phenology:
    """Development through a season, per day of the simulated span."""

    gdd: Array  # degree-days accumulated since planting (0 before)
    progress: Array  # gdd / gdd_to_maturity
    stage: NDArray[np.int8]  # -1 off season, 0-3 FAO-56 stages, 4 mature (awaiting harvest)
    kc: Array
    cover: Array  # potential canopy cover (no water stress), 0-1
    root_depth_m: Array
    in_field: NDArray[np.bool_]  # crop standing (orchard in leaf)
    planting_index: int
    maturity_index: int
    matured: bool  # reached gdd_to_maturity (else ended by a killing frost or the span's end)
    harvest_start_index: int
    harvest_peak_index: int
    harvest_end_index: int


@dataclass(frozen=True, slots=True)
class Growth:
    """What a camera and a scale would see: canopy, biomass, vegetation index."""

    cover: Array  # actual canopy cover, 0-1
    biomass_t_ha: Array  # the season's above-ground biomass, dry matter
    ndvi: Array


@dataclass(frozen=True, slots=True)
class YieldFactors:
    """The season's stresses (multipliers, 1 = no loss), biomass, harvest index and yield."""

    transpiration_ratio: float  # Ta / Tp, planting to maturity
    water: float
    heat_degree_days: float
    heat: float
    frost_degree_days: float
    frost: float
    maturity: float  # share of yield formation completed (annuals; 1 when matured)
    flowering_ks: float  # mean water-stress coefficient over flowering (1 = none)
    biomass_t_ha: float  # dry matter at maturity (or at the season's early end)
    harvest_index: float  # the season's (annuals; NaN for orchards)
    yield_t_ha: float  # the product as sold, before the farm's and season's luck


def daily_gdd(crop: CropSpec, tmin_c: Array, tmax_c: Array) -> Array:
    """Degree-days per day: McMaster & Wilhelm (1997) with both temperatures clamped to
    [base, upper] before averaging, so neither a cold night nor a hot afternoon counts
    beyond what the crop can use."""
    low, high = crop.base_temp_c, crop.upper_temp_c
    return (np.clip(tmax_c, low, high) + np.clip(tmin_c, low, high)) / 2.0 - low


def _smoothstep(u: Array) -> Array:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def phenology(
    crop: CropSpec,
    tmin_c: Array,
    tmax_c: Array,
    planting_index: int,
    harvest_delay_days: int = 0,
    gdd_to_maturity: float | None = None,
    ended_index: int | None = None,
) -> Phenology:
    """Phenology over a span of days in which the crop is planted at ``planting_index``.

    The harvest starts ``harvest_delay_days`` after maturity and lasts the
    crop's ``harvest_spread_days``; maturity is brought forward if it would
    leave the harvest past the span's end. ``gdd_to_maturity`` is the cultivar's
    (:func:`agrimatch.agronomy.cultivars.gdd_to_maturity`); the catalog's by default.
    ``ended_index`` ends the season on that day if nothing ends it earlier (the crop
    died of drought).
    """
    n = len(tmin_c)
    days = np.arange(n)
    spread = round(crop.harvest_spread_days)
    gdd = np.where(days >= planting_index, daily_gdd(crop, tmin_c, tmax_c), 0.0)
    gdd = np.cumsum(gdd)
    progress = gdd / (gdd_to_maturity if gdd_to_maturity is not None else crop.gdd_to_maturity)

    latest = max(planting_index + 1, n - 1 - spread - harvest_delay_days)
    ends = [latest]
    reached = np.flatnonzero((progress >= 1.0) & (days >= planting_index))
    if reached.size:
        ends.append(int(reached[0]))
    e1, e2, e3, _ = crop.stage_ends
    # The shared rule (agrimatch.agronomy.frost), which the forecaster mirrors.
    frozen = first_killing_frost(crop, tmin_c, progress, planting_index)
    if frozen is not None:
        ends.append(frozen)
    if ended_index is not None:
        ends.append(max(planting_index + 1, ended_index))
    maturity = min(ends)
    matured = bool(progress[maturity] >= 1.0)
    progress = np.where(days <= maturity, progress, progress[maturity])

    start = min(n - 1, maturity + harvest_delay_days)
    peak = min(n - 1, start + round(0.4 * spread))
    end = min(n - 1, start + spread)

    if crop.perennial:
        cold = np.flatnonzero((days > end) & (tmin_c <= HARD_FROST_C))
        leaf_fall = min(n - 1, end + LEAF_FALL_DAYS, int(cold[0]) if cold.size else n - 1)
        in_field = (days >= planting_index) & (days <= leaf_fall)
    else:
        in_field = (days >= planting_index) & (days <= end)
    growing = (days >= planting_index) & (days <= maturity)

    stage = np.full(n, -1, dtype=np.int8)
    stage[growing] = np.searchsorted(np.array([e1, e2, e3]), progress[growing], side="right")
    stage[in_field & (days > maturity)] = 4

    kc_curve = crop.kc_at(progress)
    ccx = crop.max_canopy_cover
    if crop.perennial:
        leafing = DORMANT_COVER + (ccx - DORMANT_COVER) * _smoothstep(progress / e2)
        cover = np.where(growing, leafing, np.where(in_field, 0.9 * ccx, DORMANT_COVER))
        kc = np.where(growing, kc_curve, np.where(in_field, crop.kc_end, crop.kc_ini))
        root = np.full(n, crop.root_depth_max_m)
    else:
        rising = ccx * (INITIAL_COVER + (1.0 - INITIAL_COVER) * _smoothstep(progress / e2))
        late = np.clip((progress - e3) / (1.0 - e3), 0.0, 1.0)
        green = np.where(progress < e3, rising, ccx * (1.0 - (1.0 - SENESCENT_COVER) * late))
        cover = np.where(growing, green, np.where(in_field, SENESCENT_COVER * ccx, 0.0))
        kc = np.where(growing, kc_curve, np.where(in_field, crop.kc_end, 0.0))
        # FAO-56 ch. 8: the root zone deepens with the canopy, to its maximum by mid season.
        deepening = np.clip(progress / e2, 0.0, 1.0)
        seedling = min(SEEDLING_ROOT_M, crop.root_depth_max_m)
        root = np.where(
            in_field, seedling + (crop.root_depth_max_m - seedling) * deepening, seedling
        )
    return Phenology(
        gdd=gdd,
        progress=progress,
        stage=stage,
        kc=kc,
        cover=cover,
        root_depth_m=root,
        in_field=in_field,
        planting_index=planting_index,
        maturity_index=maturity,
        matured=matured,
        harvest_start_index=start,
        harvest_peak_index=peak,
        harvest_end_index=end,
    )


def ndvi_from_cover(cover: Array) -> Array:
    """An NDVI-like index for canopy cover: Trout et al. (2008) fc = 1.26 NDVI - 0.18,
    inverted and kept to 0.1-0.9."""
    return np.clip((cover + 0.18) / 1.26, 0.1, 0.9)


def growth(
    crop: CropSpec, phen: Phenology, cover: Array, transpiration_mm: Array, et0_mm: Array
) -> Growth:
    """Biomass and vegetation index from the season's actual canopy and transpiration.

    ``cover`` is the canopy the water balance grew (stress slows its expansion
    and senesces it early; :func:`firmware_sim.world.soil.water_balance`);
    biomass is AquaCrop's ``WP* x sum(Tr / ET0)`` from planting, zero off the
    field.
    """
    normalised = np.where(phen.in_field, transpiration_mm / np.maximum(et0_mm, 0.5), 0.0)
    biomass = np.cumsum(crop.water_productivity_g_m2 * normalised) / 100.0  # g/m2 -> t/ha
    biomass = np.where(phen.in_field, biomass, 0.0)
    shown = np.where(phen.in_field, cover, phen.cover)
    return Growth(cover=shown, biomass_t_ha=biomass, ndvi=ndvi_from_cover(shown))


def yield_factors(
    crop: CropSpec,
    phen: Phenology,
    tmin_c: Array,
    tmax_c: Array,
    transpiration_mm: Array,
    transpiration_potential_mm: Array,
    ks: Array,
    biomass_t_ha: Array,
) -> YieldFactors:
    """The season's stresses and the yield they leave.

    Annuals (AquaCrop's way): yield is the biomass at maturity times a harvest
    index — the catalog's reference HI, cut by water stress at flowering (the
    first third of the mid-season stage: pollination and fruit or tuber set),
    by heat at flowering, by frost, and in proportion to the yield formation
    (flowering to maturity) a crop ended early by frost or drought completed —
    converted from dry matter to the product as sold. Orchards: the catalog's
    potential times FAO-33's water-production factor ``1 - Ky (1 - Ta/Tp)``,
    heat, frost and, for fruit picked unripe at a hard frost, the square of the
    thermal time it got (a tree's crop is not a share of one season's biomass).
    """
    season = slice(phen.planting_index, phen.maturity_index + 1)
    potential = float(transpiration_potential_mm[season].sum())
    ratio = float(transpiration_mm[season].sum()) / potential if potential > 0.0 else 1.0
    ratio = min(1.0, ratio)
    water = max(0.0, 1.0 - crop.ky * (1.0 - ratio))  # FAO-33 water-production function

    _, e2, e3, _ = crop.stage_ends
    flowering = phen.stage == 2
    heat_dd = float(np.maximum(0.0, tmax_c[flowering] - crop.heat_stress_threshold_c).sum())
    heat = math.exp(-crop.heat_sensitivity_per_degree_day * heat_dd)

    growing = (phen.stage >= 0) & (phen.stage <= 3)
    if crop.perennial:
        tender = growing & (phen.progress <= e2)  # bud break to fruit set
    else:
        tender = growing & (phen.progress > EMERGED) & (phen.progress <= e3)
    frost_dd = float(np.maximum(0.0, crop.frost_damage_temp_c - tmin_c[tender]).sum())
    frost = math.exp(-crop.frost_sensitivity_per_degree_day * frost_dd)

    anthesis = growing & (phen.progress >= e2) & (phen.progress <= e2 + (e3 - e2) / 3.0)
    flowering_ks = float(ks[anthesis].mean()) if anthesis.any() else 1.0
    reached = min(1.0, float(phen.progress[phen.maturity_index]))
    biomass = float(biomass_t_ha[phen.maturity_index])
    # A season ended early by frost or drought keeps what the shared rule says (the
    # forecaster's harvest windows apply the same one).
    kept = float(yield_kept_at_end(crop, reached))
    if crop.harvest_index is None or crop.dry_matter_fraction is None:  # orchards
        maturity = 1.0 if phen.matured else kept
        harvest_index = math.nan
        yield_t_ha = crop.potential_yield_t_ha * water * heat * frost * maturity
    else:
        maturity = 1.0 if phen.matured else kept
        pollination = max(0.0, 1.0 - FLOWERING_WATER_SENSITIVITY * (1.0 - flowering_ks))
        harvest_index = crop.harvest_index * pollination * heat * frost * maturity
        yield_t_ha = biomass * harvest_index / crop.dry_matter_fraction
    return YieldFactors(
        transpiration_ratio=ratio,
        water=water,
        heat_degree_days=heat_dd,
        heat=heat,
        frost_degree_days=frost_dd,
        frost=frost,
        maturity=maturity,
        flowering_ks=flowering_ks,
        biomass_t_ha=biomass,
        harvest_index=harvest_index,
        yield_t_ha=yield_t_ha,
    )
