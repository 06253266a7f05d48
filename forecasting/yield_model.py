"""Yield quantiles (P10/P50/P90) per field-season, calibrated on held-out seasons.

:class:`YieldQuantileModel` is a scikit-learn estimator over a features frame
(one row per field-season as of a date: ``crop``, ``soil``, ``region``, the
numeric features, usually ``year``). Inside it:

* a ``ColumnTransformer`` one-hot encodes the categories and passes the
  numeric features through (trees need no scaling; NaN, e.g. a field without
  a camera, is handled natively by the boosted trees);
* one ``HistGradientBoostingRegressor(loss="quantile")`` per quantile, fitted
  on the yield *relative to the crop's potential* (``yield_t_ha /
  potential_yield_t_ha``), so one model serves every crop: a drought costs
  pear and garlic a similar share of their potential, not a similar tonnage;
* conformalized quantile regression (CQR): each quantile ``q`` gets a shift
  ``d_q``, the ``q``-th quantile of the residuals ``y - ŷ_q`` on seasons the
  regressors did not see, so that on a new season ``P(y <= ŷ_q + d_q) ≈ q``
  and [P10, P90] covers about 80 %. The held-out residuals come from whole
  seasons (grouped by ``season_column``): rows of one season share its
  weather, and a calibration fold of random rows would under-state how much
  a *new* season can surprise.

``calibration="cross"`` (the default, cross-conformal) takes the residuals
out of fold (leave-seasons-out, ``calibration_folds`` folds) and refits the
regressors on everything, so every season serves both purposes; the fold
models see a little less data than the final one, which errs on the wide
side. ``"split"`` holds out ``calibration_fraction`` of the seasons once and
fits the regressors on the rest only: five times cheaper, as well calibrated,
but with the three or four seasons a region has it trains on one season less.
With a single season in ``X`` the folds fall back to random rows.

A drought drier than any training season is scaled by the agronomy too: trees
predict the driest season they learned for anything drier, so past each crop's
lowest training water factor the forecast falls by FAO-33's water factor over
that floor (:meth:`YieldQuantileModel._water_guard`; measured on the Yanchuan
drought of ``tests/test_yield_model.py``: P50 -32 % against a truth of -43 %;
-24 % without this scale, -13 % before the water factor read both probes).

Two guards keep the interval honest when the history is short. Every quantile
is clamped to what the crop can physically give (:meth:`ceiling_t_ha`): its
catalog potential, times what the region's season has allowed so far (the
heat and frost factor of the scale), times the best share of that any field
reached in training (at least 1: a well-managed field may beat the catalog;
pooled over crops: the best of one crop's few fields is a small sample).
With two training seasons a conformal shift is the extreme of a handful of
residuals, and garlic's P90 reached 94 t/ha against a potential of 22.
And :meth:`interval_trust` says, per row, how many seasons of the crop the
model learned from, ``"few_seasons"`` below :data:`MIN_TRUSTED_SEASONS`.

Measured on simulated seasons (``tests/test_yield_model.py`` builds the same
kind of data), training on the seasons before each of eight later seasons:
the relative target halved the P50's WAPE when few seasons are known and cut
it from 11.3 % to 9.1 % on average; ``HistGradientBoostingRegressor`` beat
``GradientBoostingRegressor`` (8.4 % vs 8.8 % WAPE, three times faster, and it
takes NaN); small leaves (7 leaves, >= 5 rows) help the rare drought-hit
fields.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, KFold, ShuffleSplit
from sklearn.preprocessing import OneHotEncoder

from agrimatch.agronomy import CROPS
from forecasting.features import STRESS_FACTOR_COLUMN, WATER_FACTOR_COLUMN
from forecasting.frames import FIELD_SEASON_COLUMNS

Array = NDArray[np.float64]
TARGET_COLUMN = "yield_t_ha"
MIN_TRUSTED_SEASONS = 4
"""Seasons of a crop the model must have learned from before its P10-P90 is called
trustworthy. Cross-conformal shifts come from leave-seasons-out residuals: with two
seasons each fold model learns one and is checked on the other, and the shift is an
extreme of one season's weather; from four on, each fold learns from three."""
TRUST_OK = "ok"
TRUST_FEW_SEASONS = "few_seasons"
# Columns of a features frame that are context, not numeric features: used when
# ``feature_columns`` is None to pick "every other numeric column".
_CONTEXT_COLUMNS = frozenset({*FIELD_SEASON_COLUMNS, "as_of", TARGET_COLUMN})


def quantile_column(quantile: float) -> str:
    """The column name of a quantile: 0.1 -> ``"p10"``."""
    return f"p{round(quantile * 100):02d}"


class YieldQuantileModel(RegressorMixin, BaseEstimator):
    """Calibrated yield quantiles (t/ha) per field-season from a features frame.

    Parameters are stored unchanged (scikit-learn contract); see the module
    docstring for the method. ``feature_columns=None`` uses every numeric
    column that is not field-season context (``year``, ``area_ha``...): pass
    them explicitly when ``X`` carries other numbers (truth, diagnostics).
    ``predict`` returns the P50; ``predict_quantiles`` the calibrated
    quantiles as a frame (``p10``, ``p50``, ``p90``), monotone and >= 0.

    Learned: ``preprocessor_``, ``regressors_`` (one per quantile),
    ``corrections_`` (conformal shifts, relative units, pooled),
    ``crop_corrections_`` (per crop with ``min_calibration_rows``), ``feature_columns_``,
    ``categorical_columns_``, ``quantiles_``, ``potential_t_ha_`` (catalog
    snapshot), ``feature_medians_`` (per crop, for drivers), ``crops_``,
    ``training_window_`` (first, last season or None), ``n_train_``,
    ``crop_seasons_`` (seasons per crop in training), ``ceiling_ratio_`` (the best
    training yield as a share of its row's scale, at least 1), ``water_floor_`` (per
    crop, its lowest training water factor).
    """

    def __init__(
        self,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        feature_columns: Sequence[str] | None = None,
        categorical_columns: Sequence[str] = ("crop", "soil", "region"),
        relative_to_potential: bool = True,
        learning_rate: float = 0.05,
        max_iter: int = 200,
        max_leaf_nodes: int = 7,
        min_samples_leaf: int = 5,
        l2_regularization: float = 0.0,
        calibration: str = "cross",
        calibration_fraction: float = 0.25,
        calibration_folds: int = 5,
        min_calibration_rows: int = 30,
        season_column: str | None = "year",
        random_state: int | None = 0,
    ) -> None:
        self.quantiles = quantiles
        self.feature_columns = feature_columns
        self.categorical_columns = categorical_columns
        self.relative_to_potential = relative_to_potential
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.calibration_folds = calibration_folds
        self.min_calibration_rows = min_calibration_rows
        self.season_column = season_column
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: Any) -> YieldQuantileModel:
        """Learn the quantile regressors and their conformal shifts; returns ``self``."""
        frame = _as_frame(X)
        quantiles = self._checked_quantiles()
        target = np.asarray(y, dtype=float).ravel()
        if len(target) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(target)}")
        if not np.all(np.isfinite(target)) or np.any(target < 0):
            raise ValueError("y must be finite, non-negative yields in t/ha")
        if self.calibration not in ("cross", "split"):
            raise ValueError(f"calibration must be 'cross' or 'split', got {self.calibration!r}")

        self.categorical_columns_ = [c for c in self.categorical_columns if c in frame.columns]
        self.feature_columns_ = self._numeric_columns(frame)
        self.quantiles_ = quantiles
        # A snapshot of the catalog: a persisted model keeps scaling by the potentials
        # it was trained with, even if crops.toml is revised later.
        self.potential_t_ha_ = {name: spec.potential_yield_t_ha for name, spec in CROPS.items()}
        self.water_floor_ = _water_floors(frame)
        scale = self._scale(frame)
        relative = target / scale

        groups = self._groups(frame)
        if self.calibration == "cross":
            held_out = np.full((len(frame), len(quantiles)), np.nan)
            for train, test in self._folds(frame, groups):
                fold_models = self._fit_regressors(frame.iloc[train], relative[train])
                held_out[test] = self._raw_quantiles(fold_models, frame.iloc[test])
            residuals = relative[:, None] - held_out
            calibrated = frame
            models = self._fit_regressors(frame, relative)
        else:
            # Split conformal: the regressors never see the calibration seasons.
            train, test = self._split(frame, groups)
            models = self._fit_regressors(frame.iloc[train], relative[train])
            calibrated = frame.iloc[test]
            residuals = relative[test, None] - self._raw_quantiles(models, calibrated)
        self.preprocessor_, self.regressors_ = models
        self.corrections_ = _shifts(residuals, quantiles)
        # Mondrian conformal: each crop gets the shifts of its own residuals where it has
        # enough of them. A drought-prone rainfed crop beside an irrigated orchard would
        # otherwise widen the orchard's intervals and narrow its own.
        crops = calibrated["crop"].astype(str).to_numpy() if "crop" in calibrated else None
        self.crop_corrections_ = {}
        if crops is not None:
            for crop in np.unique(crops):
                mine = residuals[crops == crop]
                if np.isfinite(mine[:, 0]).sum() >= self.min_calibration_rows:
                    self.crop_corrections_[str(crop)] = _shifts(mine, quantiles)
        self.feature_medians_ = _medians_by_crop(frame, self.feature_columns_)
        self.crops_ = sorted({str(c) for c in frame["crop"]}) if "crop" in frame else []
        self.training_window_ = self._window(frame)
        self.n_train_ = len(frame)
        self.crop_seasons_ = self._crop_seasons(frame)
        # The best share of the scale any training field reached: what a good field can do.
        self.ceiling_ratio_ = max(1.0, float(np.max(relative))) if len(relative) else 1.0
        return self

    def _checked_quantiles(self) -> list[float]:
        quantiles = sorted(float(q) for q in self.quantiles)
        if 0.5 not in quantiles or not all(0.0 < q < 1.0 for q in quantiles):
            raise ValueError(f"quantiles must lie in (0, 1) and include 0.5, got {self.quantiles}")
        if len(set(quantiles)) != len(quantiles):
            raise ValueError(f"duplicate quantiles: {self.quantiles}")
        return quantiles

    def _numeric_columns(self, frame: pd.DataFrame) -> list[str]:
        if self.feature_columns is not None:
            columns = list(self.feature_columns)
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ValueError(f"feature columns missing from X: {missing}")
            return columns
        excluded = _CONTEXT_COLUMNS | set(self.categorical_columns)
        return [
            c
            for c in frame.columns
            if c not in excluded
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]

    def _scale(self, frame: pd.DataFrame) -> Array:
        """Per row: the crop's potential yield (t/ha), times the heat and frost factor
        when X has it (:data:`~forecasting.features.STRESS_FACTOR_COLUMN`) and the water
        factor past the crop's driest training season (:meth:`_water_guard`), or 1 for
        an absolute target. The trees then learn what the agronomy does not explain, and
        a stress no training season had still lowers the forecast by its agronomic share."""
        if not self.relative_to_potential:
            return np.ones(len(frame))
        if "crop" not in frame.columns:
            raise ValueError("relative_to_potential needs a 'crop' column in X")
        crops = frame["crop"].astype(str)
        unknown = sorted(set(crops) - set(self.potential_t_ha_))
        if unknown:
            raise ValueError(f"crops not in the catalog: {unknown}")
        potential = crops.map(self.potential_t_ha_).to_numpy(dtype=float)
        # Heat and frost in full; the water factor seen so far only beyond the driest
        # season the trees learned (see _water_guard): within that range it is a feature,
        # because weeks before harvest it extrapolates a dry start to the whole season
        # (measured on the jujube/potato backtest: P50 WAPE at 60 d 19.6 % as a feature,
        # 23.2 % in the scale).
        factor = self._water_guard(frame)
        if STRESS_FACTOR_COLUMN in frame.columns:
            stress = pd.to_numeric(frame[STRESS_FACTOR_COLUMN], errors="coerce").to_numpy(float)
            factor = factor * np.nan_to_num(stress, nan=1.0)
        # Floored: a field the model thinks all but lost still gets a scale to learn on.
        return potential * np.clip(factor, 0.05, 1.0)

    def _water_guard(self, frame: pd.DataFrame) -> Array:
        """Per row: the FAO-33 water factor seen so far over the lowest its crop had in
        training (:attr:`water_floor_`), at most 1 (no column, NaN, or a model stored
        without floors: 1).

        Trees do not extrapolate: a field drier than any training season gets the
        forecast of the driest ones, and a drought no training season had (the
        Yanchuan summer drought of ``tests/test_yield_model.py``: truth -33 % for
        jujube) moved the P50 by a few per cent. Past the crop's driest training
        season, the agronomy says how much more is lost, as the heat and frost
        factor does for a frost no season had; a crop the model never saw takes the
        factor in full (floor 1). Within the range the trees learned, nothing changes.
        """
        floors = getattr(self, "water_floor_", None)
        if not floors or WATER_FACTOR_COLUMN not in frame.columns or "crop" not in frame:
            return np.ones(len(frame))
        water = pd.to_numeric(frame[WATER_FACTOR_COLUMN], errors="coerce").to_numpy(float)
        floor = frame["crop"].astype(str).map(floors).fillna(1.0).to_numpy(float)
        guard = np.where(np.isfinite(water), water / np.maximum(floor, 1e-6), 1.0)
        return np.asarray(np.minimum(guard, 1.0), dtype=np.float64)

    def _groups(self, frame: pd.DataFrame) -> NDArray[Any] | None:
        column = self.season_column
        if column is None or column not in frame.columns or frame[column].nunique() < 2:
            return None
        return frame[column].to_numpy()

    def _folds(
        self, frame: pd.DataFrame, groups: NDArray[Any] | None
    ) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
        if self.calibration_folds < 2:
            raise ValueError(f"calibration_folds must be >= 2, got {self.calibration_folds}")
        if groups is not None:
            n_splits = min(self.calibration_folds, len(np.unique(groups)))
            return list(GroupKFold(n_splits=n_splits).split(frame, groups=groups))
        n_splits = min(self.calibration_folds, len(frame))
        kfold = KFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        return list(kfold.split(frame))

    def _split(
        self, frame: pd.DataFrame, groups: NDArray[Any] | None
    ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        if groups is not None:
            splitter: Any = GroupShuffleSplit(
                n_splits=1, test_size=self.calibration_fraction, random_state=self.random_state
            )
            return next(splitter.split(frame, groups=groups))
        splitter = ShuffleSplit(
            n_splits=1, test_size=self.calibration_fraction, random_state=self.random_state
        )
        return next(splitter.split(frame))

    def _fit_regressors(
        self, frame: pd.DataFrame, relative: Array
    ) -> tuple[ColumnTransformer, list[HistGradientBoostingRegressor]]:
        preprocessor = ColumnTransformer(
            [
                (
                    "categories",
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                    self.categorical_columns_,
                ),
                ("numeric", "passthrough", self.feature_columns_),
            ],
            remainder="drop",
        )
        design = preprocessor.fit_transform(frame)
        # A feature with no value at all in these rows (e.g. last season's yield in a
        # fold of first seasons) carries no information, and the boosted trees' binning
        # cannot handle an all-NaN column: make it constant so no tree splits on it.
        design[:, np.all(np.isnan(design), axis=0)] = 0.0
        regressors = []
        for q in self.quantiles_:
            regressor = HistGradientBoostingRegressor(
                loss="quantile",
                quantile=q,
                learning_rate=self.learning_rate,
                max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                early_stopping=False,
                random_state=self.random_state,
            )
            regressors.append(regressor.fit(design, relative))
        return preprocessor, regressors

    def _raw_quantiles(
        self,
        models: tuple[ColumnTransformer, list[HistGradientBoostingRegressor]],
        frame: pd.DataFrame,
    ) -> Array:
        preprocessor, regressors = models
        design = preprocessor.transform(frame)
        return np.column_stack([r.predict(design) for r in regressors])

    def _crop_seasons(self, frame: pd.DataFrame) -> dict[str, int]:
        column = self.season_column
        if "crop" not in frame.columns:
            return {}
        if column is None or column not in frame.columns:
            return {str(c): 1 for c in frame["crop"].unique()}
        counts = frame.groupby(frame["crop"].astype(str))[column].nunique()
        return {str(crop): int(n) for crop, n in counts.items()}

    def _window(self, frame: pd.DataFrame) -> tuple[int, int] | None:
        column = self.season_column
        if column is None or column not in frame.columns:
            return None
        return int(frame[column].min()), int(frame[column].max())

    # -- predicting ------------------------------------------------------------------------

    def predict_quantiles(self, X: pd.DataFrame) -> pd.DataFrame:
        """Calibrated quantiles in t/ha, one column per quantile (``p10``, ``p50``,
        ``p90``), indexed like ``X``; monotone across columns and never negative."""
        frame = _as_frame(X)
        if not hasattr(self, "regressors_"):
            raise RuntimeError("YieldQuantileModel is not fitted yet: call fit first")
        raw = self._raw_quantiles((self.preprocessor_, self.regressors_), frame)
        shifted = raw + self._corrections(frame)
        # Rearrangement (sorting each row) removes crossing quantiles and never makes
        # the quantile loss worse (Chernozhukov et al. 2010).
        ordered = np.sort(shifted, axis=1)
        values = np.maximum(ordered, 0.0) * self._scale(frame)[:, None]
        # Clamping every column at the same ceiling keeps them ordered.
        values = np.minimum(values, self.ceiling_t_ha(frame)[:, None])
        return pd.DataFrame(
            values, index=frame.index, columns=[quantile_column(q) for q in self.quantiles_]
        )

    def _corrections(self, frame: pd.DataFrame) -> Array:
        """Per row: its crop's conformal shifts, or the pooled ones for a crop without."""
        shifts = np.tile(self.corrections_, (len(frame), 1))
        if "crop" in frame.columns:
            crops = frame["crop"].astype(str).to_numpy()
            for crop, own in self.crop_corrections_.items():
                shifts[crops == crop] = own
        return shifts

    def ceiling_t_ha(self, X: pd.DataFrame) -> Array:
        """Per row, the most the crop can physically give (t/ha): the scale (the catalog's
        potential times what heat and frost left of it, :meth:`_scale`) times the best
        share of it any field reached in training, at least 1. Infinite for an absolute
        target (no potential to bound it)."""
        frame = _as_frame(X)
        if not self.relative_to_potential:
            return np.full(len(frame), np.inf)
        # A model stored before the ceiling was learned keeps its quantiles as they were.
        headroom = float(getattr(self, "ceiling_ratio_", np.inf))
        return self._scale(frame) * max(headroom, 1.0)

    def interval_trust(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per row of ``X``: ``interval_trust`` (:data:`TRUST_OK`, or
        :data:`TRUST_FEW_SEASONS` when the model learned fewer than
        :data:`MIN_TRUSTED_SEASONS` seasons of the row's crop) and ``training_seasons``."""
        frame = _as_frame(X)
        seasons = getattr(self, "crop_seasons_", None)
        if seasons is None:  # a model stored before seasons were counted: its window
            window = getattr(self, "training_window_", None)
            span = 0 if window is None else int(window[1]) - int(window[0]) + 1
            counts = np.full(len(frame), span, dtype=int)
        else:
            crops = frame["crop"].astype(str) if "crop" in frame else pd.Series("", frame.index)
            counts = crops.map(lambda c: seasons.get(c, 0)).to_numpy(int)
        trust = np.where(counts >= MIN_TRUSTED_SEASONS, TRUST_OK, TRUST_FEW_SEASONS)
        return pd.DataFrame(
            {"interval_trust": trust, "training_seasons": counts}, index=frame.index
        )

    def predict(self, X: pd.DataFrame) -> Array:
        """The P50 yield in t/ha per row of ``X``."""
        return self.predict_quantiles(X)["p50"].to_numpy()


def _as_frame(X: Any) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame of features, got {type(X).__name__}")
    return X


def _shifts(residuals: Array, quantiles: Sequence[float]) -> Array:
    """The conformal shift of each quantile's residual column. The median is left as the
    regressor has it: shifting it too was measured to change the P50's WAPE by < 0.3
    points, in either direction."""
    return np.array(
        [0.0 if q == 0.5 else conformal_shift(residuals[:, j], q) for j, q in enumerate(quantiles)]
    )


def conformal_shift(residuals: Array, quantile: float) -> float:
    """The shift that makes ``ŷ_q + shift`` a ``q``-quantile on exchangeable new rows.

    The order statistic of split conformal prediction: the ``ceil((n + 1) q)``-th
    smallest residual above the median, the ``floor((n + 1) q)``-th below it, so
    that with few calibration rows the interval errs on the wide side.
    """
    ordered = np.sort(residuals[np.isfinite(residuals)])
    n = len(ordered)
    if n == 0:
        return 0.0
    if quantile >= 0.5:
        rank = min(n, math.ceil((n + 1) * quantile))
    else:
        rank = max(1, math.floor((n + 1) * quantile))
    return float(ordered[rank - 1])


def _water_floors(frame: pd.DataFrame) -> dict[str, float]:
    """Per crop, the lowest water factor of its training rows (no column, no crop or none
    observed: nothing)."""
    if WATER_FACTOR_COLUMN not in frame.columns or "crop" not in frame.columns:
        return {}
    water = pd.to_numeric(frame[WATER_FACTOR_COLUMN], errors="coerce")
    lowest = water.groupby(frame["crop"].astype(str)).min().dropna()
    return {str(crop): float(value) for crop, value in lowest.items()}


def _medians_by_crop(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Median of each numeric feature per crop (plus ``"*"``: all crops), the "typical
    season" drivers compare a field against."""
    numeric = frame[columns].astype(float)
    overall = numeric.median().rename("*").to_frame().T
    if "crop" not in frame.columns:
        return overall
    by_crop = numeric.groupby(frame["crop"].astype(str)).median()
    # A crop whose feature is all-NaN (no camera anywhere) falls back to the overall median.
    by_crop = by_crop.fillna(overall.iloc[0])
    return pd.concat([by_crop, overall])
