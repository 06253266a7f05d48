"""Per-field drivers: which features moved a field's P50 away from its crop's typical season.

The attribution is local and deterministic: for each numeric feature, the
change in the field's P50 when that one feature is set back to its training
median for the field's crop (``model.feature_medians_``). A positive effect
means the feature's value raised the forecast. Unlike permutation importance
it needs no random draws and no other fields, so a field's drivers are the
same whatever else is forecast with it; unlike a global importance it says
why *this* field differs ("32 dry days, 1.4 t/ha below a typical garlic
field"). Effects of correlated features overlap and need not add up to the
gap between the P50 and the typical forecast.

A feature the field did not observe (NaN, e.g. NDVI without a camera) is not
a driver: it did not move the forecast, its absence did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

DRIVER_COLUMNS = ("rank", "feature", "value", "typical_value", "effect_t_ha")
"""Columns of :func:`field_drivers` after the id columns."""


class FittedYieldModel(Protocol):
    """What drivers need of a fitted :class:`~forecasting.yield_model.YieldQuantileModel`."""

    feature_columns_: list[str]
    feature_medians_: pd.DataFrame  # index: crop names and "*" (all crops)

    def predict(self, X: pd.DataFrame) -> NDArray[np.float64]: ...


def typical_features(model: FittedYieldModel, X: pd.DataFrame) -> pd.DataFrame:
    """For each row of ``X``, the training medians of the features for the row's crop
    (the all-crop median for a crop the model never saw); indexed like ``X``."""
    medians = model.feature_medians_
    crops = X["crop"].astype(str) if "crop" in X.columns else pd.Series("*", index=X.index)
    keys = crops.where(crops.isin(medians.index), "*")
    typical = medians.loc[keys.to_numpy(), model.feature_columns_]
    typical.index = X.index
    return typical


def feature_effects(model: FittedYieldModel, X: pd.DataFrame) -> pd.DataFrame:
    """Effect (t/ha) of each feature on each row's P50: P50(x) minus P50(x with that
    feature at its crop's median). Rows like ``X``, one column per feature; NaN where
    the row did not observe the feature."""
    features = model.feature_columns_
    typical = typical_features(model, X)
    n_rows, n_features = len(X), len(features)
    # One stacked frame, one predict call: row block j has feature j set to typical.
    stacked = pd.concat([X] * n_features, ignore_index=True)
    stacked[features] = stacked[features].astype(float)  # a median may not be an integer
    for j, feature in enumerate(features):
        block = slice(j * n_rows, (j + 1) * n_rows)
        column = stacked.columns.get_loc(feature)
        stacked.iloc[block, column] = typical[feature].to_numpy()
    p50 = model.predict(X)
    counterfactual = model.predict(stacked).reshape(n_features, n_rows).T
    effects = p50[:, None] - counterfactual
    observed = X[features].notna().to_numpy()
    return pd.DataFrame(np.where(observed, effects, np.nan), index=X.index, columns=features)


def field_drivers(
    model: FittedYieldModel,
    X: pd.DataFrame,
    top_k: int = 3,
    id_columns: Sequence[str] = ("farm", "field", "crop", "year"),
) -> pd.DataFrame:
    """The ``top_k`` features that moved each field's P50 most (by absolute effect).

    One row per (field, driver): the ``id_columns`` present in ``X``, then
    ``rank`` (1 = strongest), ``feature``, ``value`` (the field's), ``typical_value``
    (its crop's training median) and ``effect_t_ha`` (signed: + raised the P50).
    Features with no effect (or not observed) are left out, so a field may have
    fewer than ``top_k`` drivers. Pure: the same model and rows give the same table.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    effects = feature_effects(model, X)
    typical = typical_features(model, X)
    ids = [c for c in id_columns if c in X.columns]
    id_values = X[ids].to_numpy(dtype=object)
    values = X[model.feature_columns_].to_numpy(dtype=float)
    typical_values = typical.to_numpy(dtype=float)
    effect_values = effects.to_numpy()
    # Strongest first; ties keep the feature order (stable sort), NaN last.
    order = np.argsort(-np.nan_to_num(np.abs(effect_values), nan=-1.0), axis=1, kind="stable")
    records: list[dict[str, object]] = []
    for i in range(len(X)):
        rank = 0
        for j in order[i, :top_k]:
            effect = effect_values[i, j]
            if not np.isfinite(effect) or effect == 0.0:
                continue
            rank += 1
            record: dict[str, object] = dict(zip(ids, id_values[i], strict=True))
            record.update(
                rank=rank,
                feature=model.feature_columns_[j],
                value=float(values[i, j]),
                typical_value=float(typical_values[i, j]),
                effect_t_ha=float(effect),
            )
            records.append(record)
    return pd.DataFrame.from_records(records, columns=[*ids, *DRIVER_COLUMNS])
