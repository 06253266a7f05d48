"""`agrimatch import farms|fields|harvests|demand FILE.csv [--dry-run]` as a user types them."""

from __future__ import annotations

import os
from datetime import date

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from agrimatch.cli import app
from agrimatch.registry import Farm, Season, make_engine, session_factory
from agrimatch.store.embedded import EmbeddedStore
from forecasting.demand_data import daily_demand_frame
from forecasting.imports import FARM_COLUMNS
from tests.imports.conftest import FARMS_CSV, FIELDS_CSV


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data dir as the only configuration (no .env, no other AGRIMATCH_ variable)."""
    for name in [n for n in os.environ if n.startswith("AGRIMATCH_")]:
        monkeypatch.delenv(name)
    root = tmp_path / "data"
    monkeypatch.setenv("AGRIMATCH_DATA_DIR", str(root))
    monkeypatch.setenv("COLUMNS", "200")  # whole reasons on one line each
    monkeypatch.chdir(tmp_path)
    return root


def _file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _import(*args):
    return CliRunner().invoke(app, ["import", *args])


def _farm_count(data_dir):
    engine = make_engine(f"sqlite:///{data_dir / 'registry.sqlite3'}")
    try:
        with session_factory(engine)() as session:
            return session.scalar(select(func.count(Farm.id)))
    finally:
        engine.dispose()


def test_good_farms_are_written_and_the_counts_printed_exit_0(data_dir, tmp_path):
    result = _import("farms", _file(tmp_path, "farms.csv", FARMS_CSV))
    assert result.exit_code == 0, result.output
    assert "2 farms rows imported: wrote 2 farms, 1 regions (new)" in result.stdout
    assert _farm_count(data_dir) == 2


def test_bad_rows_are_printed_with_line_column_and_reason_exit_1_nothing_written(
    data_dir, tmp_path
):
    text = FARMS_CSV + "Coop 3,zhongmou,91,113.9,,\n"
    result = _import("farms", _file(tmp_path, "farms.csv", text))
    assert result.exit_code == 1
    assert "bad farms rows" in result.stdout
    assert "4 │ farm " in result.stdout and "'Coop 3' is not a valid id" in result.stdout
    assert "4 │ lat " in result.stdout and "91 is outside -90..90" in result.stdout
    assert "1 of 3 farms rows are bad: nothing written (an import is all or nothing)" in (
        result.stdout
    )
    assert _farm_count(data_dir) == 0


def test_a_dry_run_exits_0_and_writes_nothing(data_dir, tmp_path):
    result = _import("farms", _file(tmp_path, "farms.csv", FARMS_CSV), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run, nothing written" in result.stdout and "would write 2 farms" in result.stdout
    assert _farm_count(data_dir) == 0


def test_a_missing_file_is_a_usage_error_exit_2(data_dir, tmp_path):
    result = _import("farms", str(tmp_path / "nowhere.csv"))
    assert result.exit_code == 2 and "cannot read" in result.stderr
    assert "nowhere.csv" in result.stderr


def test_a_file_that_is_not_csv_text_is_a_usage_error_exit_2(data_dir, tmp_path):
    path = tmp_path / "farms.csv"
    path.write_bytes("farm,region_name\na,中牟\n".encode("gbk"))
    result = _import("farms", str(path))
    assert result.exit_code == 2 and "CSV UTF-8" in result.stderr


def test_a_missing_column_is_a_usage_error_naming_it_and_the_expected_columns_exit_2(
    data_dir, tmp_path
):
    result = _import("farms", _file(tmp_path, "farms.csv", "farm,region\ncoop-1,zhongmou\n"))
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())  # the console wraps long messages
    assert "lacks the column(s) lat, lon" in message
    assert all(column.name in message for column in FARM_COLUMNS)


def test_farms_fields_harvests_and_demand_import_in_turn(data_dir, tmp_path):
    harvests = (
        "farm,field,season,harvest_start,harvest_end,yield_t_ha,reported_by\n"
        "coop-1,north,2024,2024-05-20,2024-06-03,18.4,Li Wei\n"
    )
    demand = (
        "platform,crop,region,week,quantity_kg,orders,price_cny_per_kg,campaign\n"
        "pdd,garlic,zhongmou,2024-06-10,7000,52,6.0,618\n"
    )
    for kind, text in (
        ("farms", FARMS_CSV),
        ("fields", FIELDS_CSV),
        ("harvests", harvests),
        ("demand", demand),
    ):
        result = _import(kind, _file(tmp_path, f"{kind}.csv", text))
        assert result.exit_code == 0, result.output
    assert "wrote 7 demand days, 1 platforms (new), 1 campaigns (history)" in result.stdout
    assert "campaign pdd/garlic/zhongmou 2024-06-10..2024-06-16" in result.stdout
    engine = make_engine(f"sqlite:///{data_dir / 'registry.sqlite3'}")
    with session_factory(engine)() as session:
        season = session.scalar(select(Season).where(Season.field_id == "north"))
        assert (season.yield_t_ha, season.reported_by) == (18.4, "Li Wei")
    engine.dispose()
    store = EmbeddedStore(data_dir / "telemetry.sqlite3")
    try:
        frame = daily_demand_frame(store, 0, 2**42)
    finally:
        store.close()
    assert list(frame["day"]) == [date(2024, 6, 10 + n) for n in range(7)]


def test_a_harvest_of_a_season_not_imported_exits_1_saying_to_import_fields_first(
    data_dir, tmp_path
):
    _import("farms", _file(tmp_path, "farms.csv", FARMS_CSV))
    text = (
        "farm,field,season,harvest_start,harvest_end,quantity_t,reported_by\n"
        "coop-1,north,2024,2024-05-20,2024-06-03,46,Li Wei\n"
    )
    result = _import("harvests", _file(tmp_path, "harvests.csv", text))
    assert result.exit_code == 1 and "import fields first" in result.stdout


def test_unknown_columns_are_named_as_ignored(data_dir, tmp_path):
    text = FARMS_CSV.replace("elevation_m\n", "elevation_m,notes\n", 1)
    result = _import("farms", _file(tmp_path, "farms.csv", text))
    assert result.exit_code == 0, result.output
    assert "ignored columns notes" in result.stdout
