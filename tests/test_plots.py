"""The supply/demand picture: a PNG per balance, one panel per crop and region."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from forecasting.campaigns import CampaignRecommendation
from forecasting.frames import BALANCE_COLUMNS
from forecasting.plots import plot_supply_demand

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIRST_WEEK = date(2026, 5, 4)  # a Monday
N_WEEKS = 20
SERIES = (("garlic", "jinxiang"), ("apple", "yantai"))


def _balance(series: tuple[tuple[str, str], ...] = SERIES) -> pd.DataFrame:
    rows = []
    for i, (crop, region) in enumerate(series):
        for w in range(N_WEEKS):
            # A harvest hump against flat demand, so the panels have a surplus to show.
            supply = (40_000 + 10_000 * i) * np.exp(-(((w - 8) / 4) ** 2))
            demand = 12_000.0 + 500 * w
            rows.append(
                {
                    "crop": crop,
                    "region": region,
                    "week": FIRST_WEEK + timedelta(weeks=w),
                    "supply_kg_p10": 0.7 * supply,
                    "supply_kg_p50": supply,
                    "supply_kg_p90": 1.3 * supply,
                    "demand_kg_p10": 0.8 * demand,
                    "demand_kg_p50": demand,
                    "demand_kg_p90": 1.2 * demand,
                    "surplus_kg_p50": supply - demand,
                    "p_surplus": float(supply > demand),
                    "p_shortfall": float(supply < demand),
                }
            )
    return pd.DataFrame(rows, columns=list(BALANCE_COLUMNS))


def _campaign(
    platform: str, name: str, crop: str, region: str, start: date
) -> CampaignRecommendation:
    return CampaignRecommendation(
        platform=platform,
        platform_name=name,
        crop=crop,
        region=region,
        start=start,
        end=start + timedelta(days=13),
        target_kg=20_000.0,
        expected_absorbed_kg=15_000.0,
        value_at_risk_cny=90_000.0,
        value_saved_cny=60_000.0,
        uplift=2.0,
        hangover=0.2,
        surplus_at_risk_kg=30_000.0,
        spoils_from=start + timedelta(weeks=6),
    )


CAMPAIGNS = [
    _campaign("pdd", "Pinduoduo", "garlic", "jinxiang", date(2026, 6, 15)),
    _campaign("douyin", "Douyin", "apple", "yantai", date(2026, 7, 1)),
]


def _actual(balance: pd.DataFrame, kind: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "crop": balance["crop"],
            "region": balance["region"],
            "week": balance["week"],
            "kg": balance[f"{kind}_kg_p50"] * 1.1,
        }
    )


@pytest.fixture(scope="module")
def two_series_png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("plots") / "two.png"
    assert plot_supply_demand(_balance(), CAMPAIGNS, path, title="Balance") == path
    return path.read_bytes()


def test_the_plot_is_a_png_of_plausible_size(two_series_png):
    assert two_series_png.startswith(PNG_MAGIC)
    assert 10_000 < len(two_series_png) < 2_000_000


def test_the_plot_creates_missing_parent_directories(tmp_path):
    path = tmp_path / "reports" / "2026" / "balance.png"
    plot_supply_demand(_balance(SERIES[:1]), [], path)
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_the_image_grows_taller_with_the_number_of_series(tmp_path, two_series_png):
    one = tmp_path / "one.png"
    two = tmp_path / "two.png"
    plot_supply_demand(_balance(SERIES[:1]), CAMPAIGNS, one, title="Balance")
    two.write_bytes(two_series_png)
    one_height, one_width = imread(one).shape[:2]
    two_height, two_width = imread(two).shape[:2]
    assert two_width == one_width
    assert two_height > 1.5 * one_height


def test_the_same_inputs_give_the_same_bytes(tmp_path, two_series_png):
    path = tmp_path / "again.png"
    plot_supply_demand(_balance(), CAMPAIGNS, path, title="Balance")
    assert path.read_bytes() == two_series_png


def test_the_simulated_truth_is_drawn_over_the_forecast(tmp_path, two_series_png):
    balance = _balance()
    path = tmp_path / "truth.png"
    plot_supply_demand(
        balance,
        CAMPAIGNS,
        path,
        title="Balance",
        actual_supply=_actual(balance, "supply"),
        actual_demand=_actual(balance, "demand"),
    )
    png = path.read_bytes()
    assert png.startswith(PNG_MAGIC) and png != two_series_png


def test_an_empty_balance_is_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plot_supply_demand(_balance().iloc[0:0], CAMPAIGNS, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_a_balance_missing_columns_is_refused_naming_them(tmp_path):
    balance = _balance().drop(columns=["supply_kg_p90", "demand_kg_p10"])
    with pytest.raises(ValueError, match=r"supply_kg_p90.*demand_kg_p10"):
        plot_supply_demand(balance, CAMPAIGNS, tmp_path / "bad.png")


def test_an_actual_frame_missing_columns_is_refused_naming_them(tmp_path):
    balance = _balance()
    actual = _actual(balance, "demand").drop(columns=["kg"])
    with pytest.raises(ValueError, match=r"actual_demand.*'kg'"):
        plot_supply_demand(balance, CAMPAIGNS, tmp_path / "bad.png", actual_demand=actual)
