"""The generic climate (no station within 250 km) against real climate normals, and the
warning a scenario gives when one of its regions falls back to it (issue 12, section 4)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import date

import numpy as np
import pytest

from agrimatch.scenario import load_scenario, parse_scenario, shipped_scenarios
from firmware_sim.world._climate import climate_at, generic_climate
from firmware_sim.world.weather import farm_weather

# Mean daily temperature of January and July (C), China Meteorological Administration
# 1981-2010 station normals as tabulated in the stations' climate tables (rounded;
# Kashgar and Hotan from the CMA tables of 1971-2000: Kashgar highs/lows 0.3/-10.2 and
# 32.1/18.6, Hotan -4.8 and 25.4). Korla, Zhengzhou, Yan'an and Mengzi are the world
# model's own station normals (_climate.STATIONS). (lat, lon, elevation m, Jan, Jul)
NORMALS = {
    "Harbin": (45.75, 126.77, 142, -17.6, 23.6),
    "Beijing": (39.93, 116.28, 55, -3.1, 26.7),
    "Zhengzhou": (34.72, 113.65, 110, 0.1, 27.1),
    "Shanghai": (31.40, 121.46, 6, 4.8, 28.6),
    "Guangzhou": (23.17, 113.33, 41, 13.6, 28.8),
    "Chengdu": (30.67, 104.02, 506, 5.6, 25.5),
    "Kunming": (25.02, 102.68, 1891, 8.6, 20.0),
    "Mengzi": (23.37, 103.38, 1300, 12.4, 23.0),
    "Lanzhou": (36.05, 103.88, 1518, -4.5, 22.8),
    "Yan'an": (36.60, 109.50, 959, -5.5, 24.2),
    "Urumqi": (43.78, 87.62, 935, -12.6, 23.7),
    "Kashgar": (39.47, 75.99, 1289, -5.0, 25.4),
    "Hotan": (37.13, 79.93, 1375, -4.8, 25.4),
    "Korla": (41.75, 86.13, 932, -7.5, 26.3),
    "Hohhot": (40.82, 111.68, 1063, -11.0, 23.2),
    "Aksu": (41.17, 80.23, 1105, -7.5, 24.5),
}
TOLERANCE_C = 3.0

OASIS = """
name = "oasis"
first_season = 2015
seasons = 2
[[regions]]
id = "oasis"
name = "An oasis of the Tarim Basin"
lat = 41.0
lon = 83.0
elevation_m = 1100
[[farms]]
id = "farm-1"
region = "oasis"
lat = 41.0
lon = 83.0
fields = [{ id = "f1", crop = "fragrant_pear", area_ha = 2.0, planting = "04-01" }]
"""


@pytest.mark.parametrize("place", sorted(NORMALS))
def test_generic_climate_is_within_3_c_of_real_january_and_july(place):
    lat, lon, elevation, january, july = NORMALS[place]
    climate = generic_climate(lat, lon, elevation)
    assert climate.tmean_c[0] == pytest.approx(january, abs=TOLERANCE_C)
    assert climate.tmean_c[6] == pytest.approx(july, abs=TOLERANCE_C)


# All twelve monthly means of two oases (CMA tables: Kashgar the mean of its average highs
# and lows; Hotan its monthly means). Their January and July are in the fit above; the
# months between are not (the annual cycle's shape is the northern stations').
MONTHLY = {
    "Kashgar": (
        (39.47, 75.99, 1289),
        (-5.0, -0.6, 7.6, 15.4, 19.7, 23.2, 25.4, 24.0, 19.2, 12.3, 4.4, -2.9),
    ),
    "Hotan": (
        (37.13, 79.93, 1375),
        (-4.8, -0.2, 8.8, 16.4, 20.6, 23.9, 25.4, 24.4, 19.7, 12.5, 3.9, -3.4),
    ),
}


@pytest.mark.parametrize("place", sorted(MONTHLY))
def test_the_generic_annual_cycle_follows_a_real_oasis_month_by_month(place):
    # Spring is the worst: up to 3.7 C too cold in March-April (a sine through January and
    # July was 7 C too cold then, and the crops' degree-days with it).
    where, real = MONTHLY[place]
    generic = generic_climate(*where).tmean_c
    assert np.abs(np.subtract(generic, real)).max() < 4.0


def test_an_oasis_far_from_the_stations_gets_an_oasis_climate_not_a_cold_one():
    # 41 N, 1,100 m, 276 km from Korla: the climate of Aksu (the case got a
    # January of -14 C and little summer heat; pears yielded 0.4 t/ha of 30).
    climate = climate_at(41.0, 83.0, 1100)
    assert climate.generic
    assert climate.tmean_c[0] == pytest.approx(NORMALS["Aksu"][3], abs=2.5)
    assert climate.tmean_c[6] == pytest.approx(NORMALS["Aksu"][4], abs=2.5)
    assert sum(climate.rain_mm) < 100  # Aksu ~70 mm: a desert, watered from the rivers
    assert climate.irrigation == "full"
    # The generator reproduces the normals: 4 simulated years of January and July.
    weather = farm_weather(1, "farm-1", climate, date(2015, 1, 1), date(2019, 1, 1))
    months = weather.dates.astype("datetime64[M]").astype(int) % 12
    for month, normal in ((0, climate.tmean_c[0]), (6, climate.tmean_c[6])):
        assert float(np.mean(weather.tmean_c[months == month])) == pytest.approx(normal, abs=1.5)


def test_elevation_cools_by_the_lapse_rate():
    low, high = generic_climate(36.0, 104.0, 500), generic_climate(36.0, 104.0, 2500)
    for month in range(12):
        assert low.tmean_c[month] - high.tmean_c[month] == pytest.approx(13.0, abs=0.01)


def test_a_region_falling_back_to_the_generic_climate_is_named_with_the_fix(caplog):
    with caplog.at_level(logging.WARNING, logger="agrimatch.scenario"):
        scenario = parse_scenario(OASIS, "oasis.toml")
    (fallback,) = scenario.climate_fallbacks
    assert fallback.region == "oasis"
    assert fallback.nearest_station.startswith("Korla")
    assert fallback.distance_km == pytest.approx(276, abs=2)
    (record,) = [r for r in caplog.records if r.name == "agrimatch.scenario"]
    message = record.getMessage()
    assert "oasis.toml" in message and "276 km" in message
    assert "generic climate" in message and "weather_file" in message


def test_outside_china_the_warning_says_the_guess_is_rough():
    elsewhere = OASIS.replace("lat = 41.0", "lat = 52.2").replace("lon = 83.0", "lon = 0.1")
    (fallback,) = parse_scenario(elsewhere, "cambridge.toml").climate_fallbacks
    assert not fallback.calibrated and "elsewhere a rough guess" in fallback.message()
    (oasis,) = parse_scenario(OASIS, "oasis.toml").climate_fallbacks
    assert oasis.calibrated and "rough guess" not in oasis.message()


@pytest.mark.parametrize("name", shipped_scenarios())
def test_shipped_scenarios_have_station_climates(name):
    assert load_scenario(name).climate_fallbacks == ()


def test_sim_backfill_shows_the_fallback_warning(tmp_path):
    scenario = tmp_path / "oasis.toml"
    scenario.write_text(OASIS.replace("seasons = 2", "seasons = 1"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env |= {"COLUMNS": "400", "AGRIMATCH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "agrimatch", "sim", "backfill", "--scenario", str(scenario),
         "--interval", "86400", "--no-realism"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("WARNING") == 1, done.stderr
    said = " ".join(done.stderr.split())  # rich wraps a long log line
    assert "region 'oasis'" in said and "276 km from the nearest climate station" in said
    assert 'weather_file = "path/to/weather.txt"' in said
