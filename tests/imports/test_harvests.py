"""Importing harvest reports: the truth the yield model learns from, with who reported it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from agrimatch.registry import Season, seasons_with_truth
from forecasting.imports import ImportFormatError, import_harvests
from tests.imports.conftest import count, csv

HEADER = "farm,field,season,harvest_start,harvest_end,yield_t_ha,reported_by"
NORTH = "coop-1,north,2024,2024-05-20,2024-06-03,18.4,Li Wei"  # garlic, 2.5 ha
REPORTED_AT = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)


def _import(sessions, text, **options):
    options.setdefault("reported_at", REPORTED_AT)
    with sessions.begin() as session:
        return import_harvests(session, csv(text), **options)


def _season(sessions, field="north", year=2024):
    return count(
        sessions,
        lambda s: s.scalar(select(Season).where(Season.field_id == field, Season.year == year)),
    )


def test_a_harvest_report_records_the_seasons_truth_and_who_reported_it(with_fields):
    report = _import(with_fields, f"{HEADER}\n{NORTH}\n")
    assert report.written and report.counts == {"seasons (harvest recorded)": 1}
    season = _season(with_fields)
    assert (season.yield_t_ha, season.quantity_t) == (18.4, pytest.approx(18.4 * 2.5))
    assert (season.harvest_start, season.harvest_end) == (date(2024, 5, 20), date(2024, 6, 3))
    assert season.reported_by == "Li Wei"
    assert season.reported_at.replace(tzinfo=UTC) == REPORTED_AT
    with with_fields() as session:
        assert [s.field_id for s in seasons_with_truth(session)] == ["north"]  # the training set


def test_the_harvest_peak_defaults_to_the_middle_of_the_harvest(with_fields):
    _import(with_fields, f"{HEADER}\n{NORTH}\n")
    assert _season(with_fields).harvest_peak == date(2024, 5, 27)


def test_a_quantity_gives_the_yield_over_the_seasons_area(with_fields):
    text = """\
        farm,field,season,harvest_start,harvest_end,quantity_t,harvest_peak,reported_by
        coop-1,south,2024,2024-09-10,2024-09-20,30,2024-09-12,Li Wei
    """
    assert _import(with_fields, text).written
    season = _season(with_fields, "south")
    assert (season.quantity_t, season.yield_t_ha) == (30.0, 7.5)  # maize on 4 ha
    assert season.harvest_peak == date(2024, 9, 12)


def test_yield_and_quantity_that_disagree_are_a_bad_row(with_fields):
    text = f"""\
        {HEADER},quantity_t
        {NORTH},60
    """
    [bad] = _import(with_fields, text).bad_rows
    assert bad.column == "quantity_t" and "disagrees with yield_t_ha 18.4" in bad.reason
    assert _import(with_fields, f"{HEADER},quantity_t\n{NORTH},46\n").written  # 18.4 × 2.5


def test_a_file_without_a_yield_or_a_quantity_column_is_a_format_error(with_fields):
    text = "farm,field,season,harvest_start,harvest_end,reported_by\n"
    with pytest.raises(ImportFormatError, match=r"lacks the column.*yield_t_ha or quantity_t"):
        _import(with_fields, text)


def test_a_row_with_neither_yield_nor_quantity_is_a_bad_row(with_fields):
    text = f"{HEADER},quantity_t\ncoop-1,north,2024,2024-05-20,2024-06-03,,Li Wei,\n"
    [bad] = _import(with_fields, text).bad_rows
    assert bad.column == "yield_t_ha" and "give one of them" in bad.reason


def test_a_report_without_a_reporter_is_a_bad_row(with_fields):
    [bad] = _import(
        with_fields, f"{HEADER}\ncoop-1,north,2024,2024-05-20,2024-06-03,18,\n"
    ).bad_rows
    assert bad.column == "reported_by" and "who reported the harvest" in bad.reason


def test_a_harvest_ending_before_it_starts_is_a_bad_row(with_fields):
    [bad] = _import(
        with_fields, f"{HEADER}\ncoop-1,north,2024,2024-06-03,2024-05-20,18,Li\n"
    ).bad_rows
    assert bad.column == "harvest_end" and "is before harvest_start" in bad.reason


def test_a_peak_outside_the_harvest_is_a_bad_row(with_fields):
    text = f"{HEADER},harvest_peak\n{NORTH},2024-07-01\n"
    [bad] = _import(with_fields, text).bad_rows
    assert bad.column == "harvest_peak" and "outside the harvest" in bad.reason


def test_a_harvest_before_the_planting_is_a_bad_row_saying_to_check_the_year(with_fields):
    text = f"{HEADER}\ncoop-1,north,2024,2023-05-20,2023-06-03,18,Li Wei\n"
    [bad] = _import(with_fields, text).bad_rows
    assert bad.column == "harvest_start"
    assert "not after the season's planting on 2023-10-05" in bad.reason and "year" in bad.reason


def test_a_yield_beyond_three_times_the_crops_potential_is_a_bad_row_asking_for_the_unit(
    with_fields,
):
    text = f"{HEADER}\ncoop-1,north,2024,2024-05-20,2024-06-03,1840,Li Wei\n"
    [bad] = _import(with_fields, text).bad_rows
    assert bad.column == "yield_t_ha" and "above 66 t/ha" in bad.reason  # garlic: 22 t/ha
    assert "check the unit" in bad.reason


def test_a_quantity_in_kilograms_is_caught_by_the_yield_bound(with_fields):
    text = """\
        farm,field,season,harvest_start,harvest_end,quantity_t,reported_by
        coop-1,north,2024,2024-05-20,2024-06-03,46000,Li Wei
    """
    [bad] = _import(with_fields, text).bad_rows
    assert bad.column == "quantity_t" and "46000 t on 2.5 ha" in bad.reason


def test_a_season_not_in_the_registry_is_a_bad_row_saying_to_import_fields_first(with_fields):
    text = f"""\
        {HEADER}
        coop-1,north,2023,2023-05-20,2023-06-03,18,Li Wei
        coop-1,west,2024,2024-05-20,2024-06-03,18,Li Wei
    """
    season, field = _import(with_fields, text).bad_rows
    assert (season.line, season.column) == (2, "season") and "has no season 2023" in season.reason
    assert (field.line, field.column) == (3, "field") and "import fields first" in field.reason


def test_a_season_reported_twice_is_a_bad_row_and_nothing_is_written(with_fields):
    report = _import(with_fields, f"{HEADER}\n{NORTH}\n{NORTH}\n")
    [bad] = report.bad_rows
    assert bad.line == 3 and "repeats line 2's farm/field/season coop-1/north/2024" in bad.reason
    assert _season(with_fields).yield_t_ha is None


def test_a_dry_run_records_no_truth(with_fields):
    report = _import(with_fields, f"{HEADER}\n{NORTH}\n", dry_run=True)
    assert report.ok and not report.written
    assert _season(with_fields).yield_t_ha is None


def test_importing_the_same_report_again_keeps_the_truth_and_when_it_was_first_reported(
    with_fields,
):
    _import(with_fields, f"{HEADER}\n{NORTH}\n")
    later = datetime(2025, 1, 1, tzinfo=UTC)
    assert _import(with_fields, f"{HEADER}\n{NORTH}\n", reported_at=later).written
    season = _season(with_fields)
    assert season.yield_t_ha == 18.4 and season.reported_at.replace(tzinfo=UTC) == REPORTED_AT


def test_a_corrected_report_replaces_the_truth_and_is_stamped_anew(with_fields):
    _import(with_fields, f"{HEADER}\n{NORTH}\n")
    later = datetime(2025, 1, 1, tzinfo=UTC)
    corrected = NORTH.replace("18.4", "19.0")
    assert _import(with_fields, f"{HEADER}\n{corrected}\n", reported_at=later).written
    season = _season(with_fields)
    assert season.yield_t_ha == 19.0 and season.reported_at.replace(tzinfo=UTC) == later
