"""The statistical forecasters a practitioner would pick instead of ours (Nixtla statsforecast).

Each peer fits one statsforecast model per series and origin, the way a
practitioner would set it up for weekly demand with a yearly cycle and known
promotions: on **log** demand (multiplicative seasonality, positive forecasts)
with the known campaign multipliers divided out of the history and multiplied
back into the forecast weeks they plan (the same offset our model takes, so the
comparison is of the forecasting, not of who was told about campaigns). Gaps
in the weekly grid are interpolated in log space (statsforecast takes no NaN).

* ``seasonal_naive``: the same week last year (statsforecast ``SeasonalNaive``;
  ``Naive`` while the series is younger than a year).
* ``mstl``: ``MSTL`` with a 52-week season, its trend by AutoETS (the
  strongest peer measured from outside, issue 12).
* ``auto_ets``, ``auto_theta``: ``AutoETS`` and ``AutoTheta`` at a 52-week season.
* ``auto_arima``: seasonal ``AutoARIMA``; slow (about 20x our model's time),
  so not in :data:`DEFAULT_PEERS`.

P10 and P90 are each model's own 80 % prediction interval, exponentiated.
statsforecast 2.x runs on numpy (no numba, so no compile step).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from forecasting.demand_model import (
    MAX_HORIZON_WEEKS,
    WEEKS_PER_YEAR,
    check_forecast_request,
    history_until,
    weekly_series,
)
from forecasting.frames import DEMAND_COLUMNS

PEER_METHODS = ("seasonal_naive", "mstl", "auto_ets", "auto_theta", "auto_arima")
DEFAULT_PEERS = ("seasonal_naive", "mstl", "auto_ets", "auto_theta")
INTERVAL_LEVEL = 80  # P10-P90


class StatisticalPeer(BaseEstimator):
    """A statsforecast model refitted per series at each forecast, log demand, campaigns out."""

    def __init__(self, method: str = "mstl", max_horizon_weeks: int = MAX_HORIZON_WEEKS) -> None:
        self.method = method
        self.max_horizon_weeks = max_horizon_weeks

    def fit(self, X: pd.DataFrame, y: None = None, campaigns: pd.DataFrame | None = None) -> Self:
        """Nothing to learn ahead (each forecast fits its series); checks the method."""
        if self.method not in PEER_METHODS:
            raise ValueError(f"unknown peer {self.method!r}; pick one of {', '.join(PEER_METHODS)}")
        self.fitted_ = True
        return self

    def forecast(
        self,
        history_weekly: pd.DataFrame,
        origin_week: date,
        horizon_weeks: int,
        campaigns: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """:data:`~forecasting.frames.DEMAND_COLUMNS` for the weeks after ``origin_week``."""
        if not hasattr(self, "fitted_"):
            raise RuntimeError("StatisticalPeer is not fitted; call fit() first")
        check_forecast_request(origin_week, horizon_weeks, self.max_horizon_weeks)
        known = history_until(history_weekly, origin_week)
        last_week = origin_week + timedelta(weeks=horizon_weeks)
        parts = []
        for one in weekly_series(known, campaigns, extend_to=last_week):
            origin = one.weeks.index(origin_week)
            log_y = _filled_log(one.adjusted_kg[: origin + 1])
            if len(log_y) < 2:
                continue  # nothing to fit
            log_q = log_quantiles(self.method, log_y, horizon_weeks)
            multiplier = one.campaigns["campaign_multiplier"].to_numpy(dtype=float)
            ahead = multiplier[origin + 1 : origin + 1 + horizon_weeks]
            demand = np.exp(log_q) * ahead[:, None]
            frame = pd.DataFrame(
                {
                    "platform": one.keys[0],
                    "crop": one.keys[1],
                    "region": one.keys[2],
                    "week": one.weeks[origin + 1 : origin + 1 + horizon_weeks],
                    "demand_kg_p10": demand[:, 0],
                    "demand_kg_p50": demand[:, 1],
                    "demand_kg_p90": demand[:, 2],
                }
            )
            parts.append(frame[np.isfinite(demand).all(axis=1)])
        if not parts:
            return pd.DataFrame(columns=list(DEMAND_COLUMNS))
        return pd.concat(parts, ignore_index=True)[list(DEMAND_COLUMNS)]


def log_quantiles(method: str, log_y: np.ndarray, horizon_weeks: int) -> np.ndarray:
    """(horizon, 3) log P10/P50/P90 of ``method`` fitted on ``log_y`` (no NaN)."""
    model = _model(method, len(log_y))
    out = model.forecast(y=log_y, h=horizon_weeks, level=[INTERVAL_LEVEL])
    q = np.column_stack(
        [out[f"lo-{INTERVAL_LEVEL}"], out["mean"], out[f"hi-{INTERVAL_LEVEL}"]]
    ).astype(float)
    q.sort(axis=1)  # a degenerate fit can return lo > hi
    return q


def _model(method: str, n_weeks: int) -> Any:
    # Imported here: statsforecast takes ~3 s to import, and only the backtest needs it.
    from statsforecast.models import (
        MSTL,
        AutoARIMA,
        AutoETS,
        AutoTheta,
        Naive,
        SeasonalNaive,
    )

    # A season needs one whole cycle to repeat (two for MSTL to separate it from the trend).
    season = WEEKS_PER_YEAR if n_weeks > WEEKS_PER_YEAR else 1
    if method == "seasonal_naive":
        return SeasonalNaive(season_length=WEEKS_PER_YEAR) if season > 1 else Naive()
    if method == "mstl":
        if n_weeks < 2 * WEEKS_PER_YEAR:
            return AutoETS(model="ZZN")
        return MSTL(season_length=WEEKS_PER_YEAR, trend_forecaster=AutoETS(model="ZZN"))
    if method == "auto_ets":
        return AutoETS(season_length=season)
    if method == "auto_theta":
        return AutoTheta(season_length=season)
    if method == "auto_arima":
        return AutoARIMA(season_length=season)
    raise ValueError(f"unknown peer {method!r}; pick one of {', '.join(PEER_METHODS)}")


def _filled_log(kg: np.ndarray) -> np.ndarray:
    """Log demand from the first known week, gaps interpolated (statsforecast takes no NaN)."""
    log_y = pd.Series(np.log(np.where(kg > 0, kg, np.nan)))
    first = log_y.first_valid_index()
    if first is None:
        return np.empty(0)
    filled = log_y.loc[first:].interpolate(limit_direction="both")
    return filled.to_numpy(dtype=float)
