"""Baselines the yield model must beat: the regional mean and the field's last season.

Both are scikit-learn estimators over the same features frame as
:class:`~forecasting.yield_model.YieldQuantileModel` (they read only the
context columns) with the same interface: ``predict(X)`` gives a point
forecast in t/ha, ``predict_quantiles(X)`` a ``p10``/``p50``/``p90`` frame.
Their quantiles are the point forecast times the empirical quantiles of
``yield / point forecast`` on the training seasons (``p50`` is the point
forecast itself): crude, but an honest "what history alone says" interval
for the backtest to compare against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, RegressorMixin

from forecasting.yield_model import quantile_column

Array = NDArray[np.float64]


def _frame(X: Any, columns: Sequence[str]) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(f"columns missing from X: {missing}")
    return X


def _target(X: pd.DataFrame, y: Any) -> Array:
    target = np.asarray(y, dtype=float).ravel()
    if len(target) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has {len(target)}")
    if not np.all(np.isfinite(target)):
        raise ValueError("y must be finite yields in t/ha")
    return target


def _ratio_quantiles(target: Array, point: Array, quantiles: Sequence[float]) -> Array:
    """Empirical quantiles of ``target / point`` (1 where there is nothing to learn from),
    the median's pinned to 1 so that ``p50`` is the point forecast ``predict`` gives."""
    levels = sorted(quantiles)
    usable = point > 0
    if not usable.any():
        return np.ones(len(levels))
    ratios = np.quantile(target[usable] / point[usable], levels)
    ratios[[q == 0.5 for q in levels]] = 1.0
    return np.sort(ratios)


def _quantile_frame(
    point: Array, ratios: Array, quantiles: Sequence[float], index: Any
) -> pd.DataFrame:
    values = np.maximum(point[:, None] * ratios[None, :], 0.0)
    return pd.DataFrame(
        values, index=index, columns=[quantile_column(q) for q in sorted(quantiles)]
    )


class RegionalMeanBaseline(RegressorMixin, BaseEstimator):
    """Mean yield of past seasons per crop and region (t/ha).

    A (crop, region) never seen falls back to the crop's mean, then to the mean
    of everything: what a buyer would guess from last years' county statistics.
    """

    def __init__(
        self,
        group_columns: Sequence[str] = ("crop", "region"),
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    ) -> None:
        self.group_columns = group_columns
        self.quantiles = quantiles

    def fit(self, X: pd.DataFrame, y: Any) -> RegionalMeanBaseline:
        """Learn the group means; returns ``self``."""
        groups = list(self.group_columns)
        frame = _frame(X, groups)
        target = _target(frame, y)
        table = frame[groups].astype(str).assign(_y=target)
        self.group_means_ = table.groupby(groups)["_y"].mean()
        self.first_group_means_ = table.groupby(groups[0])["_y"].mean()
        self.overall_mean_ = float(target.mean())
        self.ratio_quantiles_ = _ratio_quantiles(target, self._point(frame), self.quantiles)
        return self

    def _point(self, frame: pd.DataFrame) -> Array:
        keys = frame[list(self.group_columns)].astype(str)
        index = pd.MultiIndex.from_frame(keys) if len(self.group_columns) > 1 else keys.iloc[:, 0]
        point = pd.Series(self.group_means_.reindex(index).to_numpy(), index=frame.index)
        first = keys.iloc[:, 0].map(self.first_group_means_)
        return point.fillna(first).fillna(self.overall_mean_).to_numpy(dtype=float)

    def predict(self, X: pd.DataFrame) -> Array:
        """The regional mean yield (t/ha) per row of ``X``."""
        return self._point(_frame(X, list(self.group_columns)))

    def predict_quantiles(self, X: pd.DataFrame) -> pd.DataFrame:
        """``p10``/``p50``/``p90`` (t/ha): the mean scaled by past spread around it."""
        return _quantile_frame(self.predict(X), self.ratio_quantiles_, self.quantiles, X.index)


class LastSeasonBaseline(RegressorMixin, BaseEstimator):
    """The field's yield in its latest earlier season with the same crop (t/ha).

    ``predict`` looks, for each row, for the same ``key_columns`` (farm, field,
    crop) in a training season before the row's; a field without one (new, or
    a new crop in the rotation) gets the regional mean.
    """

    def __init__(
        self,
        key_columns: Sequence[str] = ("farm", "field", "crop"),
        season_column: str = "year",
        group_columns: Sequence[str] = ("crop", "region"),
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    ) -> None:
        self.key_columns = key_columns
        self.season_column = season_column
        self.group_columns = group_columns
        self.quantiles = quantiles

    def _columns(self) -> list[str]:
        return [*self.key_columns, self.season_column, *self.group_columns]

    def fit(self, X: pd.DataFrame, y: Any) -> LastSeasonBaseline:
        """Remember each field's seasons; returns ``self``."""
        frame = _frame(X, self._columns())
        target = _target(frame, y)
        keys = list(self.key_columns)
        history = (
            frame[keys]
            .astype(str)
            .assign(_season=frame[self.season_column].to_numpy(dtype=np.int64), _y=target)
        )
        # One value per field-season (duplicates averaged), sorted for the as-of lookup.
        self.history_ = history.groupby([*keys, "_season"], as_index=False)["_y"].mean()
        self.fallback_ = RegionalMeanBaseline(self.group_columns, self.quantiles).fit(frame, target)
        self.ratio_quantiles_ = _ratio_quantiles(target, self._point(frame), self.quantiles)
        return self

    def _point(self, frame: pd.DataFrame) -> Array:
        keys = list(self.key_columns)
        rows = (
            frame[keys]
            .astype(str)
            .assign(
                _season=frame[self.season_column].to_numpy(dtype=np.int64),
                _row=np.arange(len(frame)),
            )
        )
        # The latest season strictly before the row's (a season never predicts itself).
        last = pd.merge_asof(
            rows.sort_values("_season"),
            self.history_.sort_values("_season"),
            on="_season",
            by=keys,
            allow_exact_matches=False,
        ).set_index("_row")["_y"]
        point = last.reindex(np.arange(len(frame))).to_numpy(dtype=float)
        fallback = self.fallback_.predict(frame)
        return np.where(np.isnan(point), fallback, point)

    def predict(self, X: pd.DataFrame) -> Array:
        """Last season's yield (t/ha) of each row's field, else the regional mean."""
        return self._point(_frame(X, self._columns()))

    def predict_quantiles(self, X: pd.DataFrame) -> pd.DataFrame:
        """``p10``/``p50``/``p90`` (t/ha): last season scaled by past season-to-season change."""
        return _quantile_frame(self.predict(X), self.ratio_quantiles_, self.quantiles, X.index)
