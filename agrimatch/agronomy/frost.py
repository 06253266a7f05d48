"""The killing-frost rule: when a frost ends a crop's season.

One rule, shared by the simulator (which ends a season at the frost) and the
forecaster (which must end its harvest windows where the simulated crop
ends), so the two cannot drift apart. Pure functions of a crop spec, daily
minimum temperatures and thermal-time progress (degree-days / degree-days to
maturity).

* An annual past its initial stage dies at the first night
  ``KILLING_FROST_MARGIN_C`` below its damage temperature. Before that
  (seed in the ground, a seedling close to the soil) it survives: this is how
  autumn-sown garlic overwinters — its catalog initial stage spans the winter
  and its damage temperature is that of a mulched overwintering allium.
* An orchard's fruit still on the tree at the first hard frost
  (``HARD_FROST_C``) once the fruit has set (past the development stage) is
  picked that day.
* Frost *damage* short of killing (a yield loss) counts from emergence
  (``EMERGED`` of thermal time) for annuals.
* What a season ended early keeps (:func:`yield_kept_at_end`): an annual the
  share of its yield formation (flowering to maturity) it completed — grain,
  tubers and fruit fill after flowering, so a crop killed before it keeps
  nothing; an orchard's fruit picked unripe the square of the thermal time it
  got (it sizes and sweetens towards the end).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from agrimatch.agronomy.crops import CropSpec

EMERGED = 0.05  # thermal-time share by which an annual has emerged (frost damage counts from here)
KILLING_FROST_MARGIN_C = 2.0  # past its initial stage, an annual dies this far below damage
HARD_FROST_C = -2.0  # ends an orchard's season: fruit picked, leaves fall


def killing_temperature_c(crop: CropSpec) -> float:
    """The night minimum at or below which the crop's season ends (once vulnerable)."""
    if crop.perennial:
        return HARD_FROST_C
    return crop.frost_damage_temp_c - KILLING_FROST_MARGIN_C


def vulnerable(crop: CropSpec, progress: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Days on which a killing frost would end the season, by thermal-time progress:
    an annual past its initial stage, an orchard whose fruit has set."""
    e1, e2, _, _ = crop.stage_ends
    if crop.perennial:
        return np.asarray(progress >= e2)
    return np.asarray(progress > e1)


def first_killing_frost(
    crop: CropSpec,
    tmin_c: NDArray[np.float64],
    progress: NDArray[np.float64],
    after_index: int = 0,
) -> int | None:
    """Index of the first killing frost strictly after ``after_index`` (the planting or
    bud-break day), or None if none comes. ``tmin_c`` and ``progress`` are daily and of
    one length; ``progress`` is degree-days since planting over degree-days to maturity."""
    tmin = np.asarray(tmin_c, dtype=np.float64)
    prog = np.asarray(progress, dtype=np.float64)
    if tmin.shape != prog.shape:
        raise ValueError(
            f"tmin_c ({tmin.shape}) and progress ({prog.shape}) must be daily arrays of one length"
        )
    days = np.arange(len(tmin))
    frozen = np.flatnonzero(
        (tmin <= killing_temperature_c(crop)) & vulnerable(crop, prog) & (days > after_index)
    )
    return int(frozen[0]) if frozen.size else None


def yield_kept_at_end(crop: CropSpec, progress: ArrayLike) -> NDArray[np.float64]:
    """Share of the yield (0-1) a crop keeps when its season ends (a killing frost, or an
    annual's death) at thermal-time ``progress`` (degree-days since planting or bud break
    over degree-days to maturity; 1 or more: matured, all kept). Element-wise.

    Annuals keep the completed share of yield formation, ``(progress - e2) / (1 - e2)``
    with ``e2`` the end of the development stage (flowering): the harvest index builds
    from flowering to maturity, as AquaCrop's does. Orchards keep ``progress ** 2``."""
    reached = np.clip(np.asarray(progress, dtype=np.float64), 0.0, 1.0)
    if crop.perennial:
        return np.asarray(reached * reached)
    _, e2, _, _ = crop.stage_ends
    return np.asarray(np.clip((reached - e2) / (1.0 - e2), 0.0, 1.0))
