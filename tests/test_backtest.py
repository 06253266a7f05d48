"""The backtest over a backfilled world: rolling origin, baselines, replay, the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta

import pytest
from threadpoolctl import threadpool_limits

from agrimatch.registry.models import Season
from forecasting.backtest import BacktestOptions, run_backtest
from forecasting.chain_data import load_chain_data

FIRST, END = date(2022, 1, 1), date(2027, 1, 1)


@pytest.fixture(scope="module")
def world(backfilled_world):
    return backfilled_world("default", seasons=3)


def _data(world):
    store, sessions, _ = world
    with sessions() as session:
        return load_chain_data(store, session, FIRST, END)


@pytest.fixture(scope="module")
def report(world):
    with threadpool_limits(1):
        return run_backtest(_data(world))


def test_yield_is_scored_at_each_lead_against_both_baselines(report):
    assert report.evaluation_years == [2026]  # 2024 and 2025 to learn from
    by_lead = report.yield_by_lead.set_index("lead_days")
    assert list(by_lead.index) == [90, 60, 30]
    assert (by_lead["fields"] > 0).all()
    # The model knows the season's weather; the baselines only know past years.
    assert (by_lead["wape_p50"] < by_lead["wape_regional_mean"]).all()
    assert (by_lead["wape_p50"] < 0.15).all()
    assert ((by_lead["coverage_p10_p90"] > 0) & (by_lead["coverage_p10_p90"] <= 1)).all()
    predictions = report.yield_predictions
    assert (predictions["as_of"] < predictions["as_of"].map(lambda d: d.replace(year=2027))).all()
    assert set(predictions["year"]) == {2026}


def test_each_forecast_is_made_the_given_days_before_the_fields_peak(world, report):
    _, sessions, _ = world
    with sessions() as session:
        peaks = {
            (s.farm_id, s.field_id): s.harvest_peak
            for s in session.query(Season).filter(Season.year == 2026)
        }
    for row in report.yield_predictions.itertuples():
        assert (peaks[(row.farm, row.field)] - row.as_of).days == row.lead_days


def test_the_backtest_never_reads_the_truth_of_the_season_it_scores(world, report):
    _, sessions, _ = world
    with sessions.begin() as session:
        for season in session.query(Season).filter(Season.year == 2026):
            season.yield_t_ha = (season.yield_t_ha or 1.0) * 3
    try:
        with threadpool_limits(1):
            data = _data(world)
            from forecasting.backtest import yield_predictions

            changed = yield_predictions(data, [2026], BacktestOptions())
    finally:
        with sessions.begin() as session:
            for season in session.query(Season).filter(Season.year == 2026):
                season.yield_t_ha = (season.yield_t_ha or 3.0) / 3
    before = report.yield_predictions
    assert (changed["p50"].to_numpy() == before["p50"].to_numpy()).all()
    assert (changed["truth"].to_numpy() > 2.9 * before["truth"].to_numpy()).all()


def test_demand_is_scored_from_rolling_origins_against_seasonal_naive(report):
    scores = report.demand_scores
    assert scores["origins"] >= 2 and scores["weeks"] > 100
    assert scores["wape_p50"] < scores["wape_seasonal_naive"]
    predictions = report.demand_predictions
    assert (predictions["week"] > predictions["origin"]).all()


def test_demand_is_scored_beside_the_statistical_peers_on_the_same_weeks(report):
    scores = report.demand_by_forecaster.set_index("forecaster")
    assert list(scores.index) == [
        "model", "gbm_alone", "seasonal_naive", "mstl", "auto_ets", "auto_theta"
    ]  # fmt: skip
    assert (scores["wape_p50"] > 0).all() and (scores["wape_p50"] < 1).all()
    assert scores.loc["model", "wape_p50"] == pytest.approx(report.demand_scores["wape_p50"])
    # Every peer has its own 80 % interval; seasonal naive is a point forecast.
    for name in ("model", "gbm_alone", "mstl", "auto_ets", "auto_theta"):
        assert 0 < scores.loc[name, "coverage_p10_p90"] <= 1, name
    assert scores.loc[["model", "mstl", "auto_ets"], "seconds"].gt(0).all()
    predictions = report.demand_predictions
    for name in ("mstl", "auto_ets", "auto_theta"):
        q = predictions[[f"{name}_p10", f"{name}_p50", f"{name}_p90"]]
        assert q.notna().all().all() and (q.diff(axis=1).iloc[:, 1:] >= 0).all().all(), name


def test_the_garlic_glut_gets_campaigns_from_its_harvest_peak_that_clear_it(report):
    [garlic] = [r for r in report.replays if r.crop == "garlic"]
    # The first campaign sells during the harvest, not after the glut: here it opens
    # with the 618 buying period (from June 1), the week of the harvest peak, which the
    # recommender prefers among windows that clear about as much.
    assert garlic.campaigns
    assert garlic.first_campaign_start <= garlic.harvest_peak + timedelta(days=6)
    assert all(c.start > garlic.as_of for c in garlic.campaigns)
    outcome = garlic.outcome
    assert outcome.surplus_kg > 0
    assert outcome.recommended.surplus_cleared_share >= 0.8
    assert outcome.recommended.lost_kg < outcome.none.lost_kg
    targets = {t.name: t for t in report.targets()}
    assert targets["campaigns: surplus cleared"].met


@pytest.mark.timeout(900)  # a backfill and a backtest in a subprocess: about 80 s unloaded
def test_backtest_command_writes_tables_png_and_json(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIMATCH_")}
    env["AGRIMATCH_DATA_DIR"] = str(tmp_path)
    ran = subprocess.run(
        [sys.executable, "-m", "agrimatch", "backtest", "--scenario", "default", "--seasons", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "backfilled now" in ran.stdout and "P50 WAPE" in ran.stdout
    work = tmp_path / "backtest" / "default"
    png = (work / "default-backtest.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    report = json.loads((work / "default-backtest.json").read_text())
    assert [row["lead_days"] for row in report["yield_by_lead"]] == [90, 60, 30]
    by_crop = {(row["crop"], row["lead_days"]) for row in report["yield_by_crop"]}
    assert ("garlic", 30) in by_crop and len(by_crop) == 3 * len({c for c, _ in by_crop})
    assert "demand vs statistical peers" in ran.stdout and "mstl" in ran.stdout
    peers = {row["forecaster"]: row for row in report["demand_forecasters"]}
    assert set(peers) >= {"model", "seasonal_naive", "mstl", "auto_ets", "auto_theta"}
    assert all(row["wape_p50"] > 0 for row in peers.values())
    # The trees alone are timed inside the combination ("model"): no time of their own.
    assert all(row["seconds"] >= 0 for name, row in peers.items() if name != "gbm_alone")
    assert {t["name"] for t in report["targets"]} >= {
        "yield P50 WAPE 30 d",
        "campaigns: surplus cleared",
    }
    too_short = subprocess.run(
        [sys.executable, "-m", "agrimatch", "backtest", "--scenario", "default"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert too_short.returncode == 2 and "--seasons 3" in too_short.stderr
