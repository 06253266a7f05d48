"""Baselines the demand model must beat, with the same forecast interface (P50 only).

* :class:`SeasonalNaiveForecaster`: the same calendar week last year (52 weeks
  back), as it was; the yardstick of the backtest.
* :class:`ExponentialSmoothingForecaster`: simple exponential smoothing of
  deseasonalised log demand. Holt-Winters with a 52-week season would need 52
  seasonal states initialised from two or three years, most of them seen once
  or twice; instead the seasonal profile is estimated once by classical
  decomposition (log demand minus its centred 2x52-week moving average,
  averaged per week of the year, centred on zero) and only the level is
  smoothed. No statsmodels: that much is a dozen lines and a bounded 1-D fit.

Neither knows festivals or campaigns (``campaigns`` is accepted and ignored):
that is what the model adds. Their P10 and P90 equal the P50.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator

from forecasting.demand_model import (
    MAX_HORIZON_WEEKS,
    SERIES_KEYS,
    WEEKS_PER_YEAR,
    check_forecast_request,
    history_until,
)
from forecasting.frames import DEMAND_COLUMNS

# Demand of the ``horizon_weeks`` weeks after a series' known weekly values (its
# gap-free grid up to the origin, NaN in gaps).
_Predict = Callable[[np.ndarray, int], np.ndarray]


class SeasonalNaiveForecaster(BaseEstimator):
    """Demand of the same week last year (52 weeks back).

    Where that week is not in the history (a series younger than a year, a
    gap), the latest observed week stands in.
    """

    def __init__(self, max_horizon_weeks: int = WEEKS_PER_YEAR) -> None:
        self.max_horizon_weeks = max_horizon_weeks

    def fit(self, X: pd.DataFrame, y: None = None, campaigns: pd.DataFrame | None = None) -> Self:
        """Nothing to learn; kept so every forecaster is fitted and used alike."""
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
        check_forecast_request(origin_week, horizon_weeks, self.max_horizon_weeks)

        return _forecast_each(history_weekly, origin_week, horizon_weeks, self._predict)

    def _predict(self, known_kg: np.ndarray, horizon_weeks: int) -> np.ndarray:
        target_at = np.arange(len(known_kg), len(known_kg) + horizon_weeks)
        last_year = _take(known_kg, target_at - WEEKS_PER_YEAR)
        return np.where(np.isfinite(last_year), last_year, _last_observed(known_kg))


class ExponentialSmoothingForecaster(BaseEstimator):
    """Simple exponential smoothing of log demand with a fixed weekly seasonal profile.

    ``alpha`` is the smoothing weight of the newest week; None fits it per
    series and origin by least squares on the one-week-ahead errors.
    """

    def __init__(
        self, alpha: float | None = None, max_horizon_weeks: int = MAX_HORIZON_WEEKS
    ) -> None:
        self.alpha = alpha
        self.max_horizon_weeks = max_horizon_weeks

    def fit(self, X: pd.DataFrame, y: None = None, campaigns: pd.DataFrame | None = None) -> Self:
        """Nothing to learn ahead: the level and profile are fitted at each forecast."""
        if self.alpha is not None and not 0 < self.alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
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
        check_forecast_request(origin_week, horizon_weeks, self.max_horizon_weeks)

        return _forecast_each(history_weekly, origin_week, horizon_weeks, self._predict)

    def _predict(self, known_kg: np.ndarray, horizon_weeks: int) -> np.ndarray:
        log_y = np.log(np.where(known_kg > 0, known_kg, np.nan))
        profile = seasonal_profile(log_y)
        slot = np.arange(len(log_y) + horizon_weeks) % WEEKS_PER_YEAR
        level = smoothed_level(log_y - profile[slot[: len(log_y)]], self.alpha)
        return np.asarray(np.exp(level + profile[slot[len(log_y) :]]))


def seasonal_profile(log_y: np.ndarray) -> np.ndarray:
    """Seasonal component per week slot (index mod 52), centred on zero.

    Classical decomposition: the centred 2x52-week moving average is the
    trend; what is left, averaged per slot, is the season. Zeros where the
    history is shorter than a year and a week (no trend to remove yet).
    """
    series = pd.Series(log_y)
    trend = series.rolling(WEEKS_PER_YEAR, min_periods=WEEKS_PER_YEAR).mean()
    # A 52-week mean is centred between two weeks; averaging two neighbours re-centres it.
    centred = trend.rolling(2).mean().shift(-WEEKS_PER_YEAR // 2)
    detrended = (series - centred).to_numpy()
    slots = np.arange(len(log_y)) % WEEKS_PER_YEAR
    profile = np.zeros(WEEKS_PER_YEAR)
    seen = np.zeros(WEEKS_PER_YEAR, dtype=bool)
    for slot in range(WEEKS_PER_YEAR):
        values = detrended[(slots == slot) & np.isfinite(detrended)]
        if len(values):
            profile[slot] = values.mean()
            seen[slot] = True
    if seen.any():
        profile[seen] -= profile[seen].mean()
    return profile


def smoothed_level(values: np.ndarray, alpha: float | None = None) -> float:
    """The exponentially smoothed level after the last of ``values`` (NaN gaps skipped).

    With ``alpha`` None it is fitted on (0.01, 1] by least squares on the
    one-step-ahead errors.
    """
    known = values[np.isfinite(values)]
    if len(known) == 0:
        return float("nan")
    if alpha is None and len(known) > 2:
        fit = minimize_scalar(
            lambda a: _one_step_sse(known, a), bounds=(0.01, 1.0), method="bounded"
        )
        alpha = float(fit.x)
    return _smooth(known, 0.5 if alpha is None else alpha)[-1]


def _smooth(values: np.ndarray, alpha: float) -> np.ndarray:
    levels = np.empty(len(values))
    level = values[0]
    for k, value in enumerate(values):
        level = alpha * value + (1 - alpha) * level
        levels[k] = level
    return levels


def _one_step_sse(values: np.ndarray, alpha: float) -> float:
    levels = _smooth(values, alpha)
    return float(np.sum((values[1:] - levels[:-1]) ** 2))


def _forecast_each(
    history_weekly: pd.DataFrame,
    origin_week: date,
    horizon_weeks: int,
    predict: _Predict,
) -> pd.DataFrame:
    """Apply ``predict`` to each series on its weekly grid up to ``origin_week``."""
    known = history_until(history_weekly, origin_week)
    parts = []
    for keys, group in known.groupby(list(SERIES_KEYS), sort=True):
        by_week = group.assign(week=pd.to_datetime(group["week"]).dt.date).groupby("week")
        observed = by_week["quantity_kg"].sum()
        first = min(observed.index)
        n_known = (origin_week - first).days // 7 + 1
        weeks = [first + timedelta(weeks=k) for k in range(n_known + horizon_weeks)]
        known_kg = observed.reindex(weeks[:n_known]).to_numpy(dtype=float)
        demand_kg = predict(known_kg, horizon_weeks)
        parts.append(
            pd.DataFrame(
                {
                    "platform": keys[0],
                    "crop": keys[1],
                    "region": keys[2],
                    "week": weeks[n_known:],
                    "demand_kg_p10": demand_kg,
                    "demand_kg_p50": demand_kg,
                    "demand_kg_p90": demand_kg,
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=list(DEMAND_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(DEMAND_COLUMNS)]


def _take(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    inside = (at >= 0) & (at < len(values))
    out = np.full(len(at), np.nan)
    out[inside] = values[at[inside]]
    return out


def _last_observed(values: np.ndarray) -> float:
    known = values[np.isfinite(values)]
    return float(known[-1]) if len(known) else float("nan")
