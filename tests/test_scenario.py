"""Scenario files: shipped ones validate; bad ones fail saying where and why."""

from __future__ import annotations

import pytest

from agrimatch.scenario import ScenarioError, load_scenario, parse_scenario, shipped_scenarios

MINIMAL = """
name = "tiny"
first_season = 2024
[[regions]]
id = "r1"
name = "Region one"
lat = 34.7
lon = 114.0
[[farms]]
id = "farm-1"
region = "r1"
lat = 34.7
lon = 114.0
fields = [{ id = "f1", crop = "garlic", area_ha = 2.0, planting = "10-01" }]
"""


def test_the_four_cases_and_the_default_ship():
    assert set(shipped_scenarios()) >= {
        "default",
        "garlic-glut",
        "korla-pear",
        "yellow-river-jujube",
        "snow-lotus-surge",
    }


@pytest.mark.parametrize("name", shipped_scenarios())
def test_every_shipped_scenario_validates_and_expands(name):
    scenario = load_scenario(name)
    farms = scenario.all_farms()
    assert farms and all(f.fields for f in farms)
    assert len({f.id for f in farms}) == len(farms)


def test_farm_groups_expand_deterministically_for_the_seed():
    first = [f.model_dump() for f in load_scenario("garlic-glut").all_farms()]
    again = [f.model_dump() for f in load_scenario("garlic-glut").all_farms()]
    assert first == again


def test_the_garlic_case_is_at_the_papers_scale():
    farms = load_scenario("garlic-glut").all_farms()
    garlic_ha = sum(f.area_ha for farm in farms for f in farm.fields if f.crop == "garlic")
    assert garlic_ha > 800  # thousands of tonnes at ~16 t/ha, a glut against ~40 t/day


def test_a_minimal_scenario_parses():
    scenario = parse_scenario(MINIMAL)
    assert scenario.all_farms()[0].fields[0].crop == "garlic"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('crop = "garlic"', 'crop = "durian"'), "unknown crop 'durian'"),
        (('planting = "10-01"', 'planting = "13-01"'), "farms.0.fields.0.planting"),
        (('region = "r1"', 'region = "nowhere"'), "unknown region 'nowhere'"),
        (("area_ha = 2.0", "area_ha = -1"), "farms.0.fields.0.area_ha"),
        (('id = "farm-1"', 'id = "Farm 1"'), "farms.0.id"),
        (('name = "tiny"', 'name = "tiny"\nbogus = 1'), "bogus"),
    ],
)
def test_invalid_scenarios_fail_naming_the_place(change, message):
    old, new = change
    with pytest.raises(ScenarioError) as info:
        parse_scenario(MINIMAL.replace(old, new, 1), "tiny.toml")
    assert message in str(info.value) and "tiny.toml" in str(info.value)


def test_not_toml_is_reported_as_such():
    with pytest.raises(ScenarioError, match="not valid TOML"):
        parse_scenario("name = ", "broken.toml")


def test_an_unknown_scenario_lists_the_shipped_ones(tmp_path):
    with pytest.raises(ScenarioError, match="garlic-glut"):
        load_scenario("no-such-scenario")


def test_a_scaled_scenario_keeps_the_first_farms_and_the_glut():
    full = load_scenario("garlic-glut")
    small = full.scaled(0.05)
    farms, kept = full.all_farms(), small.all_farms()
    assert len(kept) == 11 and kept == farms[:11]
    share = len(kept) / len(farms)
    for big, little in zip(full.demand, small.demand, strict=True):
        assert little.base_kg_per_day == pytest.approx(big.base_kg_per_day * share)
    assert full.scaled(1.0) is full
    with pytest.raises(ScenarioError, match="scale"):
        full.scaled(0)
