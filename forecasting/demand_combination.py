"""Our demand model combined with MSTL, weighted and calibrated on the history's own last year.

Why: measured against statistical peers (issue 12), the gradient-boosting
model wins where its festival, price and campaign features matter (garlic)
but loses to MSTL on a lasting level shift (snow lotus fruit ×3.5): its base
is last year's week grown by recent growth, which reads a step that happened
a year ago as growth still to come. MSTL's trend follows a new level within
weeks. Neither wins everywhere, so each series gets the mix that did best
where it can be checked without looking ahead:

* **Calibration span.** At ``fit``, the model is also fitted on the history
  up to ``calibration_weeks`` before its end and both forecasters forecast the
  weeks after from origins every ``calibration_step_weeks`` weeks, as the
  backtest does: out-of-sample forecasts whose truth the history holds.
* **Weight per series** (log space, P50): of :data:`WEIGHTS` on our model, the
  one with the lowest WAPE on the series' calibration forecasts. Log space: a
  geometric mean, as the forecasters' errors are multiplicative.
* **Level steps are re-levelled away** (an intervention adjustment, as
  campaigns are divided out). Our base is last year's week grown by the recent
  year-on-year growth: within a year of a step that growth holds the step, and
  once the base week is past the step too, the step is counted twice (the
  trees alone: 91 % WAPE on snow lotus fruit x3.5). Where a series' year-on-year
  growth (13-week mean, campaigns divided out) changed by more than 2x in the
  year to the origin (:func:`level_shifted`), the step is dated and sized by a
  least-squares box on the growth (:func:`level_step`); if it is at least
  1.5x and within the last 52 weeks, the weeks before it are moved to the new
  level (:func:`relevel`) and the trees forecast from that calm history. Such
  a series is mixed 50/50 with MSTL with the two forecasters' own quantiles:
  its calibration year, mostly before the step, cannot tell which follows the
  new level better. Calibration forecasts are made the same way.
* **Intervals, conformalised** (conformalised quantile regression, Romano et
  al. 2019): the combined log P10 and P90 are moved out (or in) by the 80 %
  quantile of the calibration scores ``max(log P10 − log y, log y − log P90)``,
  so that P10–P90 covers about 80 % of the weeks as it did on the calibration
  span. The boosted trees' own quantiles covered 62–72 %.

A history too short for a calibration span (less than
``min_weeks_before_calibration`` weeks before it) gets an equal weight and the
intervals uncalibrated; :attr:`calibrated_` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from forecasting.demand_model import (
    MAX_HORIZON_WEEKS,
    SERIES_KEYS,
    WEEKS_PER_YEAR,
    DemandQuantileModel,
    check_forecast_request,
    history_until,
    weekly_series,
)
from forecasting.demand_peers import StatisticalPeer
from forecasting.frames import DEMAND_COLUMNS

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # on our model; the rest on MSTL
# A change of year-on-year growth beyond 2x in a year is a step, not noise or trend.
LEVEL_SHIFT_LOG_RATIO = float(np.log(2.0))
# A fitted step below 1.5x is the growth's noise (festivals, campaigns), not a new level.
MIN_STEP_LOG = float(np.log(1.5))
_RAMP_WEEKS = 13  # how long before the fitted step week a ramp may start
STEPPED_WEIGHT = 0.5  # on our re-levelled model, for a series that stepped within the year
_GROWTH_WEEKS = 13
_QUANTILE_COLUMNS = ("demand_kg_p10", "demand_kg_p50", "demand_kg_p90")
COVERAGE = 0.8  # P10-P90


class CombinedDemandForecaster(BaseEstimator):
    """P10/P50/P90 of weekly demand: our quantile model and MSTL, mixed and calibrated."""

    def __init__(
        self,
        max_horizon_weeks: int = MAX_HORIZON_WEEKS,
        calibration_weeks: int = WEEKS_PER_YEAR,
        calibration_step_weeks: int = 4,
        min_weeks_before_calibration: int = WEEKS_PER_YEAR,
        weights: Sequence[float] = WEIGHTS,
        max_iter: int = 200,
        random_state: int = 0,
    ) -> None:
        self.max_horizon_weeks = max_horizon_weeks
        self.calibration_weeks = calibration_weeks
        self.calibration_step_weeks = calibration_step_weeks
        self.min_weeks_before_calibration = min_weeks_before_calibration
        self.weights = weights
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: None = None, campaigns: pd.DataFrame | None = None) -> Self:
        """Fit our model on ``X``; weights and interval shift from its last year (see module)."""
        if not self.weights or not all(0.0 <= w <= 1.0 for w in self.weights):
            raise ValueError(f"weights must be values in [0, 1], got {self.weights}")
        if self.calibration_weeks < self.calibration_step_weeks or self.calibration_step_weeks < 1:
            raise ValueError(
                "calibration_weeks must be at least calibration_step_weeks (>= 1), got "
                f"{self.calibration_weeks} and {self.calibration_step_weeks}"
            )
        self.peer_ = StatisticalPeer("mstl", self.max_horizon_weeks).fit(X)
        self.series_weight_: dict[tuple[str, str, str], float] = {}
        self.series_shift_: dict[tuple[str, str, str], float] = {}
        self.default_weight_ = 0.5
        self.interval_shift_ = 0.0
        self.calibrated_ = False
        if len(X):
            self._calibrate(X, campaigns)
        # Trained on the history as forecast() shows it: a recent step re-levelled away.
        self.model_ = self._model().fit(_relevel_at_end(X, campaigns), campaigns=campaigns)
        return self

    def forecast(
        self,
        history_weekly: pd.DataFrame,
        origin_week: date,
        horizon_weeks: int,
        campaigns: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """:data:`~forecasting.frames.DEMAND_COLUMNS` for the ``horizon_weeks`` after the origin."""
        if not hasattr(self, "model_"):
            raise RuntimeError("CombinedDemandForecaster is not fitted; call fit() first")
        check_forecast_request(origin_week, horizon_weeks, self.max_horizon_weeks)
        steps = level_steps(history_weekly, campaigns, origin_week)
        ours = self.model_.forecast(
            relevel(history_weekly, steps), origin_week, horizon_weeks, campaigns
        )
        peer = self.peer_.forecast(history_weekly, origin_week, horizon_weeks, campaigns)
        return self._combine(ours, peer, set(steps))

    # -- calibration ---------------------------------------------------------------

    def _model(self) -> DemandQuantileModel:
        return DemandQuantileModel(
            max_horizon_weeks=self.max_horizon_weeks,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )

    def _calibrate(self, X: pd.DataFrame, campaigns: pd.DataFrame | None) -> None:
        """Out-of-sample forecasts over each series' last ``calibration_weeks``."""
        frame = X.assign(week=[_monday(w) for w in X["week"]])
        span = timedelta(weeks=self.calibration_weeks)
        # Each series' own last year: pooled histories may end in different years.
        cut = frame.groupby(list(SERIES_KEYS))["week"].transform("max") - span
        first = frame.groupby(list(SERIES_KEYS))["week"].transform("min")
        long_enough = (cut - first) >= timedelta(weeks=self.min_weeks_before_calibration)
        before = frame[(frame["week"] <= cut) & long_enough]
        if before.empty:
            return
        seen = _started_by(campaigns, max(cut))
        model = self._model().fit(_relevel_at_end(before, seen), campaigns=seen)
        keys = [*SERIES_KEYS, "week"]
        truth = frame.groupby(keys, as_index=False)["quantity_kg"].sum()
        parts = []
        for _, series in frame[long_enough].groupby(list(SERIES_KEYS), sort=True):
            last = max(series["week"])
            origin = last - span
            while origin < last:
                horizon = min(self.max_horizon_weeks, (last - origin).days // 7)
                seen = _started_by(campaigns, origin)
                # Forecast as forecast() will: a recent step re-levelled away first.
                steps = level_steps(series, seen, origin)
                ours = model.forecast(relevel(series, steps), origin, horizon, seen)
                peer = self.peer_.forecast(series, origin, horizon, seen)
                parts.append(
                    ours.merge(peer, on=keys, suffixes=("", "_peer")).merge(truth, on=keys)
                )
                origin += timedelta(weeks=self.calibration_step_weeks)
        if not parts:
            return
        rows = pd.concat(parts, ignore_index=True)
        rows = rows[rows["quantity_kg"] > 0]
        if rows.empty:
            return
        for keys_, group in rows.groupby(list(SERIES_KEYS), sort=True):
            actual = group["quantity_kg"].to_numpy()
            errors = [np.abs(actual - _mix(group, "demand_kg_p50", w)).sum() for w in self.weights]
            key = (str(keys_[0]), str(keys_[1]), str(keys_[2]))
            self.series_weight_[key] = float(self.weights[int(np.argmin(errors))])
        scores = []
        for keys_, group in rows.groupby(list(SERIES_KEYS), sort=True):
            key = (str(keys_[0]), str(keys_[1]), str(keys_[2]))
            weight = self.series_weight_[key]
            log_y = np.log(group["quantity_kg"].to_numpy())
            low = np.log(_mix(group, "demand_kg_p10", weight))
            high = np.log(_mix(group, "demand_kg_p90", weight))
            series_scores = np.maximum(low - log_y, log_y - high)
            # Per series: a shocked series must not widen a calm one's interval.
            self.series_shift_[key] = _conformal_shift(series_scores)
            scores.append(series_scores)
        self.interval_shift_ = _conformal_shift(np.concatenate(scores))
        self.calibrated_ = True

    def _combine(
        self,
        ours: pd.DataFrame,
        peer: pd.DataFrame,
        stepped: set[tuple[str, str, str]] | None = None,
    ) -> pd.DataFrame:
        keys = [*SERIES_KEYS, "week"]
        # A series only one forecaster could forecast keeps that one's forecast.
        joined = ours.merge(peer, on=keys, how="outer", suffixes=("", "_peer"))
        if joined.empty:
            return pd.DataFrame(columns=list(DEMAND_COLUMNS))
        series = joined[list(SERIES_KEYS)].astype(str).itertuples(index=False, name=None)
        is_stepped = np.array([key in (stepped or set()) for key in series], dtype=bool)
        weight = _per_series(joined, self.series_weight_, self.default_weight_)
        # The calibration year (mostly before the step) cannot tell which forecaster
        # follows the new level better: equal weights, the robust choice.
        weight[is_stepped] = STEPPED_WEIGHT
        for column in _QUANTILE_COLUMNS:
            has_ours = joined[column].notna().to_numpy()
            has_peer = joined[f"{column}_peer"].notna().to_numpy()
            w = np.where(has_ours & has_peer, weight, np.where(has_ours, 1.0, 0.0))
            joined[column] = _mix(joined.fillna({column: 1.0, f"{column}_peer": 1.0}), column, w)
        shift = _per_series(joined, self.series_shift_, self.interval_shift_)
        shift[is_stepped] = 0.0  # the two forecasters' own quantiles: the step is new to both
        log_q = np.log(joined[list(_QUANTILE_COLUMNS)].to_numpy(dtype=float))
        log_q[:, 0] -= shift
        log_q[:, 2] += shift
        log_q.sort(axis=1)  # a negative shift must not cross P50
        out = joined[keys].copy()
        for k, column in enumerate(_QUANTILE_COLUMNS):
            out[column] = np.exp(log_q[:, k])
        return out[list(DEMAND_COLUMNS)].reset_index(drop=True)


def level_shifted(adjusted_kg: np.ndarray, threshold: float = LEVEL_SHIFT_LOG_RATIO) -> bool:
    """Did the series' level step in the year to its last week?

    ``adjusted_kg`` is the weekly demand on a gap-free grid (NaN in gaps),
    campaigns divided out. The year-on-year growth of the 13-week mean is
    followed over the last 53 weeks; a range wider than ``threshold`` (log)
    is a step up or down. A series younger than two years cannot tell: False.
    """
    mean = pd.Series(adjusted_kg).rolling(_GROWTH_WEEKS, min_periods=_GROWTH_WEEKS - 3).mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.log(mean / mean.shift(WEEKS_PER_YEAR))
    recent = growth.iloc[-(WEEKS_PER_YEAR + 1) :]
    recent = recent[np.isfinite(recent)]
    return bool(len(recent) and recent.max() - recent.min() > threshold)


def _relevel_at_end(history: pd.DataFrame, campaigns: pd.DataFrame | None) -> pd.DataFrame:
    """Each series re-levelled for the steps it shows at its own last week."""
    if history.empty:
        return history
    parts = [
        relevel(group, level_steps(group, campaigns, _monday(max(group["week"]))))
        for _, group in history.groupby(list(SERIES_KEYS), sort=False)
    ]
    return pd.concat(parts).loc[history.index]


def _started_by(campaigns: pd.DataFrame | None, day: date) -> pd.DataFrame | None:
    """The campaigns started by ``day``: what a forecast from then may know."""
    if campaigns is None or campaigns.empty:
        return campaigns
    return campaigns[[_monday(d) <= day for d in campaigns["start_on"]]]


def _per_series(
    rows: pd.DataFrame, values: dict[tuple[str, str, str], float], default: float
) -> np.ndarray:
    """Each row's series value from ``values`` (``default`` for a series not in it)."""
    keys = rows[list(SERIES_KEYS)].astype(str).itertuples(index=False, name=None)
    return np.array([values.get((a, b, c), default) for a, b, c in keys], dtype=float)


def _conformal_shift(scores: np.ndarray) -> float:
    """The CQR shift: the 80 % quantile of the scores, finite-sample corrected."""
    n = len(scores)
    return float(np.quantile(scores, min(1.0, COVERAGE * (n + 1) / n)))


def _mix(rows: pd.DataFrame, column: str, weight: float | np.ndarray) -> np.ndarray:
    """Weighted geometric mean of our ``column`` and the peer's (``{column}_peer``)."""
    ours = np.log(rows[column].to_numpy(dtype=float))
    peer = np.log(rows[f"{column}_peer"].to_numpy(dtype=float))
    return np.asarray(np.exp(weight * ours + (1.0 - np.asarray(weight)) * peer))


def _monday(value: object) -> date:
    day = pd.Timestamp(value).date()
    return day - timedelta(days=day.weekday())


def level_step(adjusted_kg: np.ndarray) -> tuple[int, float] | None:
    """Where the level stepped in the last two years, and by how much (log).

    The year-on-year growth of the 4-week mean, ``d``, is ``a`` for a calm
    series; a step at grid week ``s`` adds ``step`` to it for the 52 weeks from
    ``s`` (a year later, both weeks compared are past it). The least-squares
    fit of that box over the last 104 weeks gives ``s`` and ``step``. None
    when the series is too short for two year-on-year points inside and out.
    """
    mean = pd.Series(adjusted_kg).rolling(4, min_periods=2).mean().to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.log(mean[WEEKS_PER_YEAR:] / mean[:-WEEKS_PER_YEAR])
    n = len(adjusted_kg)
    at = np.arange(WEEKS_PER_YEAR, n)
    window = (at >= n - 2 * WEEKS_PER_YEAR) & np.isfinite(growth)
    at, growth = at[window], growth[window]
    best: tuple[float, int, float] | None = None
    for s in at:
        inside = (at >= s) & (at < s + WEEKS_PER_YEAR)
        if inside.sum() < 2 or (~inside).sum() < 2:
            continue
        step = growth[inside].mean() - growth[~inside].mean()
        fitted = np.where(inside, growth[inside].mean(), growth[~inside].mean())
        sse = float(np.sum((growth - fitted) ** 2))
        if best is None or sse < best[0]:
            best = (sse, int(s), float(step))
    return None if best is None else (best[1], best[2])


@dataclass(frozen=True, slots=True)
class LevelStep:
    """A series' recent step: its fitted week, size (log), and how far below (log) the new
    level each known week was — the whole step before it, part of it on a ramp."""

    week: date
    log_step: float
    log_factor: dict[date, float]


def level_steps(
    history_weekly: pd.DataFrame, campaigns: pd.DataFrame | None, origin_week: date
) -> dict[tuple[str, str, str], LevelStep]:
    """Each series whose level stepped in the year to the origin.

    A step counts when the year-on-year growth moved by more than 2x
    (:func:`level_shifted`), the fitted step (:func:`level_step`) is at least
    :data:`MIN_STEP_LOG` and it came within the last 52 weeks: later, the
    weeks our base compares are both past it. A step that ramps over weeks
    (snow lotus fruit: 17) is followed week by week over the last year: each
    week's share of it is its year-on-year growth above the calm growth.
    """
    known = history_until(history_weekly, origin_week)
    steps = {}
    for one in weekly_series(known, _started_by(campaigns, origin_week), extend_to=None):
        if not level_shifted(one.adjusted_kg):
            continue
        found = level_step(one.adjusted_kg)
        if found is None or abs(found[1]) < MIN_STEP_LOG:
            continue
        at, step = found
        if one.weeks[at] <= origin_week - timedelta(weeks=WEEKS_PER_YEAR):
            continue
        n = len(one.weeks)
        # Centred, so a ramp's weeks are not read late.
        log_mean = (
            pd.Series(np.log(one.adjusted_kg))
            .rolling(5, center=True, min_periods=3)
            .mean()
            .to_numpy(dtype=float)
        )
        growth = np.full(n, np.nan)
        growth[WEEKS_PER_YEAR:] = log_mean[WEEKS_PER_YEAR:] - log_mean[:-WEEKS_PER_YEAR]
        index = np.arange(n)
        inside = (index >= at) & (index < at + WEEKS_PER_YEAR)
        calm = (index >= n - 2 * WEEKS_PER_YEAR) & ~inside & np.isfinite(growth)
        share = np.clip((growth - np.mean(growth[calm])) / step, 0.0, 1.0) if calm.any() else None
        log_factor = np.full(n, step)
        if share is not None:
            # Only near the step: older weeks are all before it, noise must not move them.
            near = (index >= max(at - _RAMP_WEEKS, n - WEEKS_PER_YEAR)) & np.isfinite(share)
            log_factor[near] = step * (1.0 - share[near])
        steps[one.keys] = LevelStep(
            one.weeks[at], step, dict(zip(one.weeks, log_factor.tolist(), strict=True))
        )
    return steps


def relevel(
    history_weekly: pd.DataFrame, steps: dict[tuple[str, str, str], LevelStep]
) -> pd.DataFrame:
    """The history with each stepped series' weeks before its step moved to the new level.

    Why: our base is last year's week grown by the recent year-on-year growth;
    within a year of a step that growth holds the step, and once the base week
    is past the step too the step is counted twice. Re-levelled (an intervention
    adjustment, as campaigns are divided out), the history is calm at the new level.
    """
    if not steps:
        return history_weekly
    weeks = [_monday(w) for w in history_weekly["week"]]
    series = history_weekly[list(SERIES_KEYS)].astype(str).itertuples(index=False, name=None)
    log_factor = np.zeros(len(history_weekly))
    for k, (key, week) in enumerate(zip(series, weeks, strict=True)):
        found = steps.get(key)
        if found is not None:
            log_factor[k] = found.log_factor.get(week, 0.0)
    return history_weekly.assign(
        quantity_kg=history_weekly["quantity_kg"].to_numpy() * np.exp(log_factor)
    )
