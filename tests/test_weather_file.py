"""A region's real daily weather file (AquaCrop's format): read, checked on load, and
the simulator's weather exactly as the file gives it (issue 12, section 4)."""

from __future__ import annotations

import math
import re
import tomllib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from agrimatch.scenario import Region, ScenarioError, load_scenario
from agrimatch.weather_table import WeatherFileError, read_weather_table
from firmware_sim.backfill import season_years
from firmware_sim.layout import plan_from_scenario
from firmware_sim.signals import site_conditions
from firmware_sim.world.season import scenario_seasons
from firmware_sim.world.weather import farm_weather
from firmware_sim.world.weather_file import WeatherFileCoverageError

HEADER = "Day       Month     Year      Tmin(C)        Tmax(C)        Prcp(mm)       Et0(mm)"
FIRST, LAST = date(2019, 1, 1), date(2021, 12, 31)


def _day_values(day: date) -> tuple[float, float, float, float]:
    """A made-up but plausible day: a seasonal cycle, rain every fifth day."""
    k = day.toordinal()
    season = math.cos(2 * math.pi * (day.timetuple().tm_yday - 200) / 365)
    tmin = round(5.0 + 12.0 * season + (k % 3), 2)
    tmax = round(tmin + 9.0 + (k % 5), 2)
    rain = float(k % 7 + 1) if k % 5 == 0 else 0.0
    return tmin, tmax, rain, round(3.0 + 2.0 * season, 2)


def _rows(first: date = FIRST, last: date = LAST) -> list[str]:
    rows = []
    for k in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(k)
        tmin, tmax, rain, et0 = _day_values(day)
        cells = (day.day, day.month, day.year, f"{tmin:.2f}", f"{tmax:.2f}", f"{rain:.2f}", et0)
        rows.append("".join(f"{c!s:<15}" if i > 2 else f"{c!s:<10}" for i, c in enumerate(cells)))
    return rows


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


SCENARIO = """
name = "observed"
first_season = {first_season}
seasons = {seasons}
[[regions]]
id = "plain"
name = "A plain with a weather station"
lat = 40.4
lon = {lon}
elevation_m = 550
weather_file = "{weather_file}"
[[farms]]
id = "farm-1"
region = "plain"
lat = 40.4
lon = {lon}
fields = [{{ id = "f1", crop = "maize", area_ha = 3.0, planting = "05-01", devices = 1 }}]
"""


def _scenario(tmp_path: Path, weather_file: str = "weather/plain.txt", **kw: object) -> Path:
    values = {"first_season": 2020, "seasons": 1, "weather_file": weather_file, "lon": -98.0}
    values |= kw
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO.format(**values), encoding="utf-8")
    return path


@pytest.fixture
def station(tmp_path: Path) -> Path:
    (tmp_path / "weather").mkdir()
    return _write(tmp_path / "weather" / "plain.txt", _rows())


def test_a_season_on_a_weather_file_has_exactly_its_temperatures_and_rain(tmp_path, station):
    scenario = load_scenario(_scenario(tmp_path))  # the path is relative to the TOML
    (region,) = scenario.regions
    assert region.weather_file == str(station.resolve())
    assert scenario.climate_fallbacks == ()  # far from every station, but observed

    (season,) = scenario_seasons(scenario)
    daily = season.daily
    days = [date.fromordinal(daily.first_ordinal + i) for i in range(len(daily))]
    assert days[0] == date(2020, 5, 1) and days[-1] == date(2021, 4, 30)
    expected = np.array([_day_values(d) for d in days])
    np.testing.assert_array_equal(daily.tmin_c, expected[:, 0])
    np.testing.assert_array_equal(daily.tmax_c, expected[:, 1])
    np.testing.assert_array_equal(daily.rain_mm, expected[:, 2])
    # The crop's water balance runs on the file's reference ET0, not Hargreaves'.
    np.testing.assert_array_equal(daily.et0_mm, expected[:, 3])
    assert np.all(daily.radiation_mj_m2 > 0) and np.all(daily.dew_point_c <= daily.tmin_c)

    # The devices read the same weather: hourly, a rain gauge totals the file's rain. From
    # 00:00 UTC, 48 hours hold the whole local solar day (98 W: UTC-6.5 h), and the days
    # either side of a rainy one are dry.
    (spec,) = plan_from_scenario(scenario, interval_s=3600.0)
    assert spec.weather_file == region.weather_file
    rainy = next(d for d in days[30:] if _day_values(d)[2] > 0)
    assert (
        _day_values(rainy - timedelta(days=1))[2] == _day_values(rainy + timedelta(days=1))[2] == 0
    )
    midnight = (rainy - date(1970, 1, 1)).days * 86400.0
    samples = [site_conditions(spec, scenario.seed, midnight + h * 3600.0) for h in range(1, 49)]
    assert sum(s.rain_mm for s in samples) == pytest.approx(_day_values(rainy)[2], abs=1e-6)


def test_the_file_gives_its_own_reference_et0(station):
    from firmware_sim.world._climate import climate_at

    climate = climate_at(40.4, -98.0, 550, str(station))
    weather = farm_weather(1, "farm-1", climate, date(2020, 3, 1), date(2020, 3, 11))
    expected = [_day_values(date(2020, 3, d))[3] for d in range(1, 11)]
    assert weather.reference_et0_mm is not None
    np.testing.assert_array_equal(weather.reference_et0_mm, expected)
    # The climate's normals are the file's own (its January mean, here).
    januaries = [sum(_day_values(date(y, 1, d))[:2]) / 2 for y in (2019, 2020, 2021)
                 for d in range(1, 32)]  # fmt: skip
    assert climate.tmean_c[0] == pytest.approx(np.mean(januaries))


def test_seasons_outside_the_file_fail_on_load_naming_its_years(tmp_path, station):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_scenario(tmp_path, first_season=2020, seasons=3))
    message = str(caught.value)
    assert "regions.0.weather_file" in message
    assert "covers 2019-01-01 to 2021-12-31" in message
    assert "seasons 2020-2022" in message and "2020-03-01 to 2023-05-01" in message


def test_the_simulator_refuses_days_the_file_lacks(station):
    from firmware_sim.world._climate import climate_at

    climate = climate_at(40.4, -98.0, 550, str(station))
    with pytest.raises(WeatherFileCoverageError, match="covers 2019-01-01 to 2021-12-31"):
        farm_weather(1, "farm-1", climate, date(2021, 12, 1), date(2022, 1, 10))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_scenario(tmp_path, weather_file="nowhere.txt"))
    assert "regions.0.weather_file" in str(caught.value)
    assert "nowhere.txt" in str(caught.value) and "cannot read it" in str(caught.value)


def test_an_anomaly_cannot_be_injected_into_observed_weather(tmp_path, station):
    path = _scenario(tmp_path)
    path.write_text(
        path.read_text()
        + '\n[[anomalies]]\nkind = "drought"\nregion = "plain"\n'
        + "start = 2020-06-01\nend = 2020-07-01\n"
    )
    with pytest.raises(ScenarioError, match="remove the anomaly or the weather_file"):
        load_scenario(path)


def _broken(tmp_path: Path, line: int, text: str | None) -> Path:
    rows = _rows()
    if text is None:
        del rows[line - 2]
    else:
        rows[line - 2] = text
    return _write(tmp_path / "broken.txt", rows)


@pytest.mark.parametrize(
    ("line", "text", "expected"),
    [
        (5, "4 1 2019 -3.0 abc 0.0 1.2", "line 5, column Tmax(C): 'abc' is not a number"),
        (7, "6 1 2019 -3.0 4.0 0.0", "line 7: 6 columns, expected 7"),
        (9, "8 1 2019 -3.0 4.0 0.0 1.2 9", "line 9: 8 columns, expected 7"),
        (4, "31 2 2019 -3.0 4.0 0.0 1.2", "line 4, columns Day Month Year: 31 2 2019 is not"),
        (6, None, "line 6, columns Day Month Year: 2019-01-06 follows 2019-01-04"),
        (8, "7 1 2019 9.0 4.0 0.0 1.2", "line 8, column Tmax(C): 4 is below Tmin(C) 9"),
        (3, "2 1 2019 -3.0 4.0 -1.0 1.2", "line 3, column Prcp(mm): -1 is outside"),
        (3, "2 1 2019 -3.0 400.0 0.0 1.2", "line 3, column Tmax(C): 400 is outside"),
    ],
)
def test_bad_rows_are_named_by_line_and_column(tmp_path, line, text, expected):
    path = _broken(tmp_path, line, text)
    with pytest.raises(WeatherFileError) as caught:
        read_weather_table(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_a_file_without_a_header_or_without_rows_is_refused(tmp_path):
    headless = tmp_path / "headless.txt"
    headless.write_text("\n".join(_rows(FIRST, FIRST + timedelta(days=3))) + "\n")
    with pytest.raises(WeatherFileError, match="line 1: no header line"):
        read_weather_table(headless)
    empty = _write(tmp_path / "empty.txt", [])
    with pytest.raises(WeatherFileError, match="no data rows"):
        read_weather_table(empty)


def test_tabs_and_several_header_lines_are_read(tmp_path):
    rows = [r.replace("     ", "\t") for r in _rows(FIRST, FIRST + timedelta(days=9))]
    path = tmp_path / "tabs.txt"
    path.write_text("Station: plain (made up)\n" + HEADER + "\n" + "\n".join(rows) + "\n")
    table = read_weather_table(path)
    assert (table.first_day, table.last_day, len(table)) == (FIRST, date(2019, 1, 10), 10)
    assert table.tmax_c[3] == _day_values(date(2019, 1, 4))[1]


def test_more_seasons_than_the_file_holds_fail_before_any_simulation(tmp_path, station):
    scenario = load_scenario(_scenario(tmp_path))
    assert season_years(scenario, 1) == [2020]
    with pytest.raises(ScenarioError, match="covers 2019-01-01 to 2021-12-31"):
        season_years(scenario, 2)  # what `sim backfill --seasons 2` asks for


def test_the_readme_example_reads(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The simulated world", 1)[1].split("\n## ", 1)[0]
    region_toml, weather = re.findall(r"```(?:toml)?\n(.*?)```", section, flags=re.DOTALL)
    region = Region.model_validate(tomllib.loads(region_toml)["regions"][0])
    assert region.weather_file == "weather/aksu.txt"
    table = read_weather_table(_write_text(tmp_path / "aksu.txt", weather))
    assert (table.first_day, len(table), table.tmax_c[1]) == (date(2015, 1, 1), 2, 0.4)


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_holding_just_the_days_a_season_needs_is_enough(tmp_path):
    (tmp_path / "weather").mkdir()
    # Maize planted 1 May 2020: 60 days of spin-up and a day's margin before, to the next
    # planting: the loader asks for 2020-03-01 to 2021-05-01, and nothing more is read.
    _write(tmp_path / "weather" / "plain.txt", _rows(date(2020, 3, 1), date(2021, 5, 1)))
    # At 80 E (local solar time UTC+5:20), so that the hours sampled below are local hours
    # of the crop year: the first and the last day of the season.
    scenario = load_scenario(_scenario(tmp_path, lon=80.0))
    (season,) = scenario_seasons(scenario)
    assert season.daily.tmax_c[0] == _day_values(date(2020, 5, 1))[1]
    (spec,) = plan_from_scenario(scenario, interval_s=3600.0)
    first_hour = (date(2020, 5, 1) - date(1970, 1, 1)).days * 86400.0 + 3600.0
    last_hour = (date(2021, 4, 30) - date(1970, 1, 1)).days * 86400.0 + 12 * 3600.0
    for t in (first_hour, last_hour):
        assert site_conditions(spec, scenario.seed, t).air_temp_c > -60
    shorter = tmp_path / "weather" / "plain.txt"
    _write(shorter, _rows(date(2020, 3, 2), date(2021, 5, 1)))
    with pytest.raises(ScenarioError, match="covers 2020-03-02 to 2021-05-01"):
        load_scenario(_scenario(tmp_path, lon=80.0))


def test_a_file_saved_with_a_row_index_is_read_as_aquacrop_reads_it(tmp_path):
    # pandas' to_csv with its index (AquaCrop's own brussels_future.txt): a first field
    # per row that the header does not name.
    rows = _rows(FIRST, FIRST + timedelta(days=4))
    path = tmp_path / "indexed.txt"
    path.write_text(
        "\t" + "\t".join(HEADER.split()) + "\r\n"
        + "".join(f"{i}\t" + "\t".join(r.split()) + "\r\n" for i, r in enumerate(rows)),
        encoding="utf-8",
    )  # fmt: skip
    table = read_weather_table(path)
    assert (table.first_day, len(table)) == (FIRST, 5)
    np.testing.assert_array_equal(
        table.tmin_c, [_day_values(FIRST + timedelta(days=i))[0] for i in range(5)]
    )


def test_sim_backfill_beyond_the_file_says_so_in_one_line(tmp_path, station):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env |= {"COLUMNS": "400", "AGRIMATCH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "agrimatch", "sim", "backfill", "--scenario",
         str(_scenario(tmp_path)), "--seasons", "2", "--interval", "86400", "--no-realism"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "covers 2019-01-01 to 2021-12-31" in " ".join(done.stderr.split())
