"""The shared killing-frost rule and degree-day lookup (agrimatch.agronomy)."""

from __future__ import annotations

import numpy as np
import pytest

from agrimatch.agronomy import CROPS
from agrimatch.agronomy.cultivars import gdd_to_maturity
from agrimatch.agronomy.frost import (
    HARD_FROST_C,
    first_killing_frost,
    killing_temperature_c,
    yield_kept_at_end,
)


def test_annual_dies_past_its_initial_stage_only() -> None:
    maize = CROPS["maize"]
    e1 = maize.stage_ends[0]
    cold = killing_temperature_c(maize) - 0.5
    tmin = np.array([5.0, cold, 5.0, cold, 5.0])
    progress = np.array([0.0, e1 / 2, e1 + 0.01, e1 + 0.05, e1 + 0.1])
    # The seedling's frost (day 1) is survived; the first one past the initial stage kills.
    assert first_killing_frost(maize, tmin, progress, after_index=0) == 3
    assert first_killing_frost(maize, np.full(5, 5.0), progress) is None


def test_garlic_overwinters_but_dies_to_a_frost_after_winter() -> None:
    garlic = CROPS["garlic"]
    e1 = garlic.stage_ends[0]
    tmin = np.array([0.0, -20.0, -20.0, -5.0, -20.0])
    progress = np.array([0.0, 0.1, e1 - 0.01, e1 + 0.05, e1 + 0.1])
    assert first_killing_frost(garlic, tmin, progress) == 4


def test_orchard_fruit_is_picked_at_the_first_hard_frost_after_set() -> None:
    pear = CROPS["fragrant_pear"]
    e2 = pear.stage_ends[1]
    tmin = np.array([HARD_FROST_C, HARD_FROST_C, 3.0, HARD_FROST_C])
    progress = np.array([0.0, e2 - 0.1, e2, e2 + 0.1])
    assert first_killing_frost(pear, tmin, progress) == 3


def test_a_season_ended_early_keeps_the_yield_formation_it_completed() -> None:
    # Annuals fill grain, tubers or fruit from flowering (the end of development) on.
    maize = CROPS["maize"]
    e2 = maize.stage_ends[1]
    kept = yield_kept_at_end(maize, [0.0, e2, (e2 + 1.0) / 2, 1.0, 1.3])
    assert kept == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    # An orchard's fruit picked unripe: the square of its thermal time.
    pear = CROPS["fragrant_pear"]
    assert yield_kept_at_end(pear, [0.5, 1.0, 1.2]) == pytest.approx([0.25, 1.0, 1.0])


def test_mismatched_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        first_killing_frost(CROPS["maize"], np.zeros(3), np.zeros(4))


def test_degree_days_default_to_the_catalog() -> None:
    assert gdd_to_maturity("potato") == CROPS["potato"].gdd_to_maturity
    assert gdd_to_maturity(CROPS["potato"], "nowhere") == CROPS["potato"].gdd_to_maturity


def test_crops_aquacrop_cannot_check_say_what_their_parameters_rest_on() -> None:
    for name in ("garlic", "fragrant_pear", "jujube", "snow_lotus_fruit"):
        assert "AquaCrop" in CROPS[name].basis, name
    for crop in CROPS.values():
        if not crop.perennial:
            assert crop.harvest_index and crop.dry_matter_fraction, crop.name
