"""Importing fields and their seasons: named by harvest year, checked against catalogs and the
registry, all or nothing."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from agrimatch.registry import Field, Season, SeasonTruth, record_season_truth
from forecasting.imports import import_fields
from tests.imports.conftest import FIELDS_CSV, count, csv

HEADER = "farm,field,crop,area_ha,planted_on,soil,lat,lon"


def _seasons(sessions):
    return count(
        sessions,
        lambda s: [
            (x.farm_id, x.field_id, x.year, x.crop, x.planted_on, x.area_ha)
            for x in s.scalars(
                select(Season).order_by(Season.farm_id, Season.field_id, Season.year)
            )
        ],
    )


def _fields(sessions):
    return count(
        sessions,
        lambda s: [
            (f.farm_id, f.field_id, f.crop, f.area_ha, f.planting_month_day, f.soil)
            for f in s.scalars(select(Field).order_by(Field.farm_id, Field.field_id))
        ],
    )


def _import(sessions, text, **options):
    with sessions.begin() as session:
        return import_fields(session, csv(text), **options)


def test_fields_and_their_seasons_are_written_each_season_named_by_its_harvest_year(with_farms):
    report = _import(with_farms, FIELDS_CSV)
    assert report.written and report.counts == {"fields": 3, "seasons": 3}
    assert _seasons(with_farms) == [
        ("coop-1", "north", 2024, "garlic", date(2023, 10, 5), 2.5),  # sown before winter
        ("coop-1", "south", 2024, "maize", date(2024, 4, 20), 4.0),
        ("coop-2", "east", 2024, "garlic", date(2023, 10, 1), 1.5),
    ]
    assert _fields(with_farms)[0] == ("coop-1", "north", "garlic", 2.5, "10-05", "loam")


def test_a_field_takes_the_plan_of_its_latest_season(with_farms):
    _import(
        with_farms,
        f"""\
        {HEADER}
        coop-1,north,maize,3,2024-04-25,loam,34.7,113.9
        coop-1,north,garlic,2.5,2022-10-03,loam,34.7,113.9
        """,
    )
    assert _fields(with_farms) == [("coop-1", "north", "maize", 3.0, "04-25", "loam")]
    assert [s[2:4] for s in _seasons(with_farms)] == [(2023, "garlic"), (2024, "maize")]


def test_older_seasons_imported_later_keep_the_fields_current_plan(with_fields):
    _import(with_fields, f"{HEADER}\ncoop-1,north,maize,3,2021-04-25,clay,34.72,113.98\n")
    north = _fields(with_fields)[0]
    assert north == ("coop-1", "north", "garlic", 2.5, "10-05", "clay")  # the soil is the field's


def test_a_season_given_that_does_not_follow_from_the_planting_is_a_bad_row(with_farms):
    report = _import(
        with_farms,
        f"""\
        {HEADER},season
        coop-1,north,garlic,2.5,2023-10-05,loam,34.7,113.9,2023
        coop-1,south,maize,4,2024-04-20,loam,34.7,113.9,2024
        """,
    )
    [bad] = report.bad_rows
    assert (bad.line, bad.column) == (2, "season")
    assert "harvested in 2024" in bad.reason and "write 2024 or leave season empty" in bad.reason
    assert _seasons(with_farms) == []


def test_a_crop_or_soil_not_in_the_catalogs_is_a_bad_row_listing_the_catalog(with_farms):
    report = _import(with_farms, f"{HEADER}\ncoop-1,north,Garlic,2.5,2023-10-05,loamy,34.7,113.9\n")
    crop, soil = report.bad_rows
    assert (
        crop.column == "crop" and "did you mean garlic?" in crop.reason and "maize" in crop.reason
    )
    assert soil.column == "soil" and "did you mean loam?" in soil.reason and "clay" in soil.reason


def test_an_area_that_is_not_above_zero_is_a_bad_row(with_farms):
    report = _import(with_farms, f"{HEADER}\ncoop-1,north,garlic,0,2023-10-05,loam,34.7,113.9\n")
    [bad] = report.bad_rows
    assert bad.column == "area_ha" and "must be above 0" in bad.reason


def test_a_planting_day_not_written_yyyy_mm_dd_is_a_bad_row(with_farms):
    report = _import(with_farms, f"{HEADER}\ncoop-1,north,garlic,2,05/10/2023,loam,34.7,113.9\n")
    [bad] = report.bad_rows
    assert bad.column == "planted_on" and "write YYYY-MM-DD" in bad.reason


def test_a_field_of_a_farm_not_in_the_registry_is_a_bad_row_saying_to_import_farms_first(
    with_farms,
):
    report = _import(with_farms, f"{HEADER}\ncoop-9,north,garlic,2,2023-10-05,loam,34.7,113.9\n")
    [bad] = report.bad_rows
    assert bad.column == "farm" and "import farms first" in bad.reason


def test_a_field_season_given_twice_is_a_bad_row_naming_the_first_line(with_farms):
    report = _import(
        with_farms,
        f"""\
        {HEADER}
        coop-1,north,garlic,2.5,2023-10-05,loam,34.7,113.9
        coop-1,south,maize,4,2024-04-20,loam,34.7,113.9
        coop-1,north,garlic,2.5,2023-10-09,loam,34.7,113.9
        """,
    )
    [bad] = report.bad_rows
    assert bad.line == 4 and "repeats line 2's farm/field/season coop-1/north/2024" in bad.reason


def test_rows_of_one_field_with_two_soils_are_a_bad_row(with_farms):
    report = _import(
        with_farms,
        f"""\
        {HEADER}
        coop-1,north,garlic,2.5,2023-10-05,loam,34.7,113.9
        coop-1,north,maize,2.5,2022-04-20,clay,34.7,113.9
        """,
    )
    [bad] = report.bad_rows
    assert (bad.line, bad.column) == (3, "soil") and "a field has one soil" in bad.reason


def test_the_plan_of_a_season_with_a_recorded_harvest_cannot_change(with_fields):
    with with_fields.begin() as session:
        truth = SeasonTruth(20.0, 50.0, date(2024, 5, 20), date(2024, 5, 25), date(2024, 6, 1))
        record_season_truth(session, "coop-1", "north", 2024, truth)
    report = _import(
        with_fields, f"{HEADER}\ncoop-1,north,garlic,3.0,2023-10-05,loam,34.72,113.98\n"
    )
    [bad] = report.bad_rows
    assert "has a harvest recorded" in bad.reason and "on 2.5 ha" in bad.reason
    assert _import(with_fields, FIELDS_CSV).written  # the same plan is fine


def test_a_dry_run_writes_no_field_and_no_season(with_farms):
    report = _import(with_farms, FIELDS_CSV, dry_run=True)
    assert report.ok and not report.written and report.counts == {"fields": 3, "seasons": 3}
    assert _fields(with_farms) == [] and _seasons(with_farms) == []


def test_importing_the_same_fields_twice_leaves_the_same_rows(with_fields):
    fields, seasons = _fields(with_fields), _seasons(with_fields)
    assert _import(with_fields, FIELDS_CSV).written
    assert _fields(with_fields) == fields and _seasons(with_fields) == seasons
