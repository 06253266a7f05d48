"""Our crop model against AquaCrop-OSPy on real weather (firmware_sim.world.validation).

Bounded for CI: the first six seasons of each calibration site (never the
held-out Champion file) for maize, potato and tomato; both models on the
same station weather, soil class and rooting depth, rainfed from field
capacity. The bounds are what the calibration sites show (docs/benchmarks.md,
"Crop model vs AquaCrop"), with room for the subset: the seasons rank alike
(Spearman) and the mean dry yields are of one level.
"""

from __future__ import annotations

import pytest

from firmware_sim.world.validation import CALIBRATION_SITES, HELD_OUT, agreement, compare

SEASONS_PER_SITE = 6
# crop -> (least Spearman over all sites' seasons, level range of our mean / AquaCrop's).
# Measured on these seasons: maize 0.83 / 1.06, potato 0.84 / 1.04, tomato 0.94 / 0.55 —
# our tomato yields about half of AquaCrop's (a stated miss: heat at flowering, which
# AquaCrop counts only above 40 C, and our smaller tomato canopy under stress).
BOUNDS = {
    "maize": (0.70, (0.80, 1.35)),
    "potato": (0.70, (0.80, 1.30)),
    "tomato": (0.80, (0.40, 0.80)),
}


@pytest.mark.parametrize("crop", sorted(BOUNDS))
def test_seasons_rank_and_level_as_aquacrop_does(crop: str) -> None:
    assert HELD_OUT not in CALIBRATION_SITES
    pairs = compare(CALIBRATION_SITES, crop, SEASONS_PER_SITE)
    result = agreement(pairs)
    least_rho, (low, high) = BOUNDS[crop]
    summary = (
        f"{crop}: {result.seasons} seasons, Spearman {result.spearman:.2f}, level "
        f"{result.level:.2f} ({result.ours_mean_t_ha:.2f} vs {result.aquacrop_mean_t_ha:.2f} "
        f"t/ha), days {result.ours_days:.0f} vs {result.aquacrop_days:.0f}"
    )
    assert result.seasons >= 15, summary
    assert result.spearman >= least_rho, summary
    assert low <= result.level <= high, summary
    # The same cultivar in both models: season lengths within two weeks on average.
    assert abs(result.ours_days - result.aquacrop_days) <= 14, summary
