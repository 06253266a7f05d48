"""Reading import tables: CSV text and files, records, and what cannot be read at all."""

from __future__ import annotations

from datetime import date

import pytest

from forecasting.imports import (
    FARM_COLUMNS,
    ImportFormatError,
    import_farms,
    parse_csv,
    read_csv,
    table_from_records,
)
from tests.imports.conftest import csv


def test_rows_keep_their_csv_line_numbers_with_the_header_on_line_1_and_blank_lines_skipped():
    table = parse_csv("farm,region\na,r\n\nb,r\n,\nc,r\n")
    assert [row.line for row in table.rows] == [2, 4, 6]
    assert [row.cells["farm"] for row in table.rows] == ["a", "b", "c"]


def test_a_quoted_cell_over_two_lines_counts_from_the_line_it_starts_on():
    table = parse_csv('farm,region_name\na,"two\nlines"\nb,x\n')
    assert [(row.line, row.cells["farm"]) for row in table.rows] == [(2, "a"), (4, "b")]


def test_a_byte_order_mark_upper_case_names_and_spaces_around_cells_are_tolerated(tmp_path):
    path = tmp_path / "farms.csv"
    path.write_bytes("\ufeffFarm , Region\n coop-1 , zhongmou \n".encode())
    table = read_csv(path)
    assert table.columns == ("farm", "region")
    assert dict(table.rows[0].cells) == {"farm": "coop-1", "region": "zhongmou"}


def test_a_short_row_has_empty_cells_at_its_end():
    table = parse_csv("farm,region,lat\na,r\n")
    assert table.rows[0].cells == {"farm": "a", "region": "r", "lat": ""}
    assert table.rows[0].problem is None


def test_a_row_with_more_cells_than_the_header_is_a_bad_row_saying_to_quote_commas(sessions):
    table = csv("""\
        farm,region,lat,lon,elevation_m
        coop-1,zhongmou,34.7,113.9,90,extra
    """)
    with sessions.begin() as session:
        report = import_farms(session, table)
    [bad] = report.bad_rows
    assert bad.line == 2 and bad.column is None and "quote a cell" in bad.reason


def test_a_file_that_is_not_utf8_is_a_format_error_saying_to_save_it_as_csv_utf8(tmp_path):
    path = tmp_path / "farms.csv"
    path.write_bytes("farm,region_name\na,中牟\n".encode("gbk"))
    with pytest.raises(ImportFormatError, match=r"not UTF-8.*CSV UTF-8"):
        read_csv(path)


def test_a_spreadsheet_workbook_is_a_format_error_saying_to_save_it_as_csv(tmp_path):
    path = tmp_path / "farms.xlsx"
    path.write_bytes(b"PK\x03\x04 rest of a zip")
    with pytest.raises(ImportFormatError, match=r"\.xlsx.*CSV"):
        read_csv(path)


def test_a_missing_file_is_a_format_error_naming_it(tmp_path):
    with pytest.raises(ImportFormatError, match=r"cannot read .*nowhere.csv"):
        read_csv(tmp_path / "nowhere.csv")


def test_an_empty_file_is_a_format_error_asking_for_a_header():
    with pytest.raises(ImportFormatError, match=r"empty.*name the columns"):
        parse_csv("\n\n")


def test_a_column_named_twice_is_a_format_error():
    with pytest.raises(ImportFormatError, match=r"'farm' appears twice"):
        parse_csv("farm,region,farm\na,b,c\n")


def test_a_missing_required_column_is_a_format_error_naming_it_and_listing_the_expected(sessions):
    table = csv("""\
        farm,region,latitude,lon
        coop-1,zhongmou,34.7,113.9
    """)
    with sessions.begin() as session, pytest.raises(ImportFormatError) as raised:
        import_farms(session, table)
    message = str(raised.value)
    assert "lacks the column(s) lat;" in message
    assert all(column.name in message for column in FARM_COLUMNS)


def test_columns_the_kind_does_not_know_are_reported_as_ignored(sessions):
    table = csv("""\
        farm,region,lat,lon,elevation_m,notes
        coop-1,zhongmou,34.7,113.9,90,by the river
    """)
    with sessions.begin() as session:
        report = import_farms(session, table)
    assert report.written and report.ignored_columns == ("notes",)


def test_records_read_as_rows_numbered_from_1_with_numbers_dates_and_none_as_text():
    table = table_from_records(
        [
            {"Farm": "a", "lat": 34.5, "day": date(2024, 1, 2), "campaign": True},
            {"farm": "b", "lat": None, "campaign": False},
        ]
    )
    assert [row.line for row in table.rows] == [1, 2]
    assert dict(table.rows[0].cells) == {
        "farm": "a",
        "lat": "34.5",
        "day": "2024-01-02",
        "campaign": "1",
    }
    assert table.rows[1].cells["lat"] == "" and table.rows[1].cells["campaign"] == ""


def test_records_are_checked_like_csv_rows(sessions):
    table = table_from_records(
        [
            {"farm": "coop-1", "region": "zhongmou", "lat": 34.7, "lon": 113.9, "elevation_m": 90},
            {"farm": "Coop 2", "region": "zhongmou", "lat": 34.7, "lon": 113.9},
        ]
    )
    with sessions.begin() as session:
        report = import_farms(session, table)
    [bad] = report.bad_rows
    assert (bad.line, bad.column) == (2, "farm") and "e.g. coop-2" in bad.reason
