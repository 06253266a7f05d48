"""Importing farms: regions made from their first farm, every bad row reported, all or nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from agrimatch.registry import Farm, Region
from forecasting.imports import import_farms
from tests.imports.conftest import FARMS_CSV, count, csv


def _farms(sessions):
    return count(
        sessions,
        lambda s: [
            (f.id, f.region_id, f.lat, f.lon) for f in s.scalars(select(Farm).order_by(Farm.id))
        ],
    )


def test_farms_are_written_and_a_new_region_is_created_from_its_first_farm(sessions):
    with sessions.begin() as session:
        report = import_farms(session, csv(FARMS_CSV))
    assert report.written and report.rows == 2
    assert report.counts == {"farms": 2, "regions (new)": 1}
    assert _farms(sessions) == [
        ("coop-1", "zhongmou", 34.72, 113.98),
        ("coop-2", "zhongmou", 34.70, 113.90),
    ]
    region = count(sessions, lambda s: s.get(Region, "zhongmou"))
    assert (region.name, region.lat, region.lon, region.elevation_m) == (
        "Zhongmou, Henan",
        34.72,
        113.98,
        90.0,
    )


def test_a_new_region_is_named_by_its_id_when_no_region_name_is_given(sessions):
    with sessions.begin() as session:
        import_farms(session, csv("farm,region,lat,lon,elevation_m\nf,korla,41.7,86.1,930\n"))
    assert count(sessions, lambda s: s.get(Region, "korla").name) == "korla"


def test_a_new_regions_first_row_without_elevation_is_a_bad_row_and_nothing_is_written(sessions):
    table = csv("""\
        farm,region,lat,lon,elevation_m
        coop-1,korla,41.7,86.1,
        coop-2,korla,41.6,86.0,930
    """)
    with sessions.begin() as session:
        report = import_farms(session, table)
    [bad] = report.bad_rows
    assert (bad.line, bad.column) == (2, "elevation_m") and "region korla is new" in bad.reason
    assert not report.written and report.counts == {}
    assert _farms(sessions) == [] and count(sessions, lambda s: s.get(Region, "korla")) is None


def test_a_region_already_in_the_registry_is_left_as_it_is(with_farms):
    with with_farms.begin() as session:
        report = import_farms(
            session, csv("farm,region,lat,lon,region_name,elevation_m\nf,zhongmou,1,2,Other,5\n")
        )
    assert report.counts["regions (new)"] == 0
    region = count(with_farms, lambda s: s.get(Region, "zhongmou"))
    assert (region.name, region.elevation_m) == ("Zhongmou, Henan", 90.0)


def test_every_bad_cell_of_every_row_is_reported_with_its_line_and_column(sessions):
    table = csv("""\
        farm,region,lat,lon,elevation_m
        Coop One,zhongmou,34.7,113.9,90
        coop-2,zhongmou,134.7,113.9,90
        coop-3,zhongmou,"34,7",,90
        coop-4,zhongmou,34.7,113.9,90
    """)
    with sessions.begin() as session:
        report = import_farms(session, table)
    assert [(bad.line, bad.column) for bad in report.bad_rows] == [
        (2, "farm"),
        (3, "lat"),
        (4, "lat"),
        (4, "lon"),
    ]
    reasons = [bad.reason for bad in report.bad_rows]
    assert "'Coop One' is not a valid id" in reasons[0] and "e.g. coop-one" in reasons[0]
    assert "134.7 is outside -90..90" in reasons[1]
    assert "not a number (no thousands separators; a point" in reasons[2]
    assert reasons[3].startswith("is empty: give the farm's longitude")
    assert (
        report.bad_lines == 3 and "3 of 4 farms rows are bad: nothing written" in report.summary()
    )
    assert _farms(sessions) == []  # coop-4 was good, and is not written either


def test_a_farm_given_twice_is_a_bad_row_naming_the_first_line(sessions):
    table = csv("""\
        farm,region,lat,lon,elevation_m
        coop-1,zhongmou,34.7,113.9,90
        coop-1,zhongmou,34.6,113.8,90
    """)
    with sessions.begin() as session:
        report = import_farms(session, table)
    [bad] = report.bad_rows
    assert bad.line == 3 and "repeats line 2's farm coop-1" in bad.reason


def test_a_dry_run_checks_and_counts_but_writes_nothing(sessions):
    with sessions.begin() as session:
        report = import_farms(session, csv(FARMS_CSV), dry_run=True)
    assert report.ok and not report.written
    assert report.counts == {"farms": 2, "regions (new)": 1}
    assert "dry run, nothing written" in report.summary()
    assert (
        _farms(sessions) == [] and count(sessions, lambda s: s.scalar(func.count(Region.id))) == 0
    )


def test_importing_the_same_farms_twice_leaves_the_same_rows(with_farms):
    before = _farms(with_farms)
    with with_farms.begin() as session:
        assert import_farms(session, csv(FARMS_CSV)).written
    assert _farms(with_farms) == before
    assert count(with_farms, lambda s: s.scalar(func.count(Region.id))) == 1


def test_a_farm_imported_again_with_a_new_location_is_updated(with_farms):
    with with_farms.begin() as session:
        import_farms(session, csv("farm,region,lat,lon\ncoop-2,zhongmou,34.5,113.5\n"))
    assert _farms(with_farms)[1] == ("coop-2", "zhongmou", 34.5, 113.5)
