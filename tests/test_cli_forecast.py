"""`agrimatch forecast run | show | what-if` as a user types them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from agrimatch.cli import app

AS_OF = "2026-04-15"


@pytest.fixture
def data_dir(backfilled_world, monkeypatch):
    _store, _sessions, root = backfilled_world("default", seasons=3)
    monkeypatch.setenv("AGRIMATCH_DATA_DIR", str(root))
    return root


@pytest.fixture
def ran(data_dir):
    with threadpool_limits(1):
        result = CliRunner().invoke(app, ["forecast", "run", "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    return result


def test_forecast_run_prints_the_answer_campaigns_planting_and_supply(ran):
    assert f"forecast as of {AS_OF}" in ran.stdout
    assert "campaigns to organise, by date" in ran.stdout
    assert "farms that change" in ran.stdout
    assert "supply vs demand per week" in ran.stdout
    # Two harvested seasons behind the model: its yield intervals are flagged as rough.
    assert "rests on too few harvested seasons" in ran.stdout and "rough" in ran.stdout


def test_forecast_show_json_holds_the_whole_run(ran):
    shown = CliRunner().invoke(app, ["forecast", "show", "--as-of", AS_OF, "--json"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.stdout)
    assert body["as_of"] == AS_OF
    starts = [c["start"] for c in body["campaigns"]]
    assert starts and starts == sorted(starts)
    assert all(c["value_saved_cny"] > 0 and c["reasons"] for c in body["campaigns"])
    assert body["planting"] and all(p["farms"] for p in body["planting"])
    assert body["supply"] and body["balance"] and body["demand"]
    sown = [f for f in body["fields"] if f["calibration"] != "past_yields"]
    assert sown and all(f["interval_trust"] == "few_seasons" for f in sown)
    assert {f["training_seasons"] for f in sown} == {2}
    # No forecast was stored for a harvested season: the model's own calibration.
    assert {f["calibration"] for f in sown} == {"cross_validated"}
    shown = CliRunner().invoke(app, ["forecast", "show", "--as-of", AS_OF])
    assert "rests on too few harvested seasons" in shown.stdout


def test_forecast_show_csv_gives_one_table(ran):
    shown = CliRunner().invoke(app, ["forecast", "show", "--csv", "--table", "planting"])
    assert shown.exit_code == 0, shown.output
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    assert rows and {"farm", "crop", "current_ha", "recommended_ha", "reasons"} <= set(rows[0])


def test_forecast_show_refuses_an_unknown_table_and_both_formats(data_dir):
    wrong = CliRunner().invoke(app, ["forecast", "show", "--csv", "--table", "nope"])
    assert wrong.exit_code == 2 and "--table must be one of" in wrong.output
    both = CliRunner().invoke(app, ["forecast", "show", "--csv", "--json"])
    assert both.exit_code == 2 and "choose one" in both.output


def test_forecast_show_with_nothing_stored_names_the_command_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("AGRIMATCH_DATA_DIR", str(tmp_path))
    shown = CliRunner().invoke(app, ["forecast", "show"])
    assert shown.exit_code == 1
    assert "no forecast stored yet: run `agrimatch forecast run" in shown.output


def test_a_what_if_crop_typo_is_a_usage_error_naming_the_crops_grown(data_dir):
    typo = CliRunner().invoke(
        app, ["forecast", "what-if", "--as-of", AS_OF, "--area", "garlick=1.5"]
    )
    assert typo.exit_code == 2
    assert "no field grows garlick in the plan (it has garlic, maize, tomato)" in typo.output
    bad_date = CliRunner().invoke(app, ["forecast", "run", "--as-of", "15/04/2026"])
    assert bad_date.exit_code == 2 and "--as-of must be YYYY-MM-DD" in bad_date.output
