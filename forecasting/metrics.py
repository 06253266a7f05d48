"""Forecast accuracy: WAPE, pinball loss and interval coverage (pure and vectorised).

Every function takes array-likes of equal length and returns a float; NaN
targets are not allowed (a season without a recorded yield is not evaluated).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

_QUANTILE_COLUMN = re.compile(r"^p(\d{1,2})$")


def _arrays(*values: ArrayLike) -> list[NDArray[np.float64]]:
    arrays = [np.asarray(v, dtype=float).ravel() for v in values]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"lengths differ: {[a.shape[0] for a in arrays]}")
    if arrays[0].size == 0:
        raise ValueError("nothing to evaluate: empty arrays")
    return arrays


def wape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Weighted absolute percentage error: sum |y - ŷ| / sum |y| (0.1 = 10 %).

    Weighted by the truth, so a big field's miss counts for more than a small
    one's, as it does for the supply a region can sell.
    """
    truth, predicted = _arrays(y_true, y_pred)
    total = float(np.abs(truth).sum())
    if total == 0.0:
        raise ValueError("WAPE is undefined when every true value is 0")
    return float(np.abs(truth - predicted).sum() / total)


def pinball_loss(y_true: ArrayLike, y_pred: ArrayLike, quantile: float) -> float:
    """Mean pinball (quantile) loss of ``y_pred`` as the ``quantile`` of ``y_true``."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    truth, predicted = _arrays(y_true, y_pred)
    diff = truth - predicted
    return float(np.mean(np.maximum(quantile * diff, (quantile - 1.0) * diff)))


def interval_coverage(y_true: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of ``y_true`` inside ``[lower, upper]`` (bounds included)."""
    truth, low, high = _arrays(y_true, lower, upper)
    return float(np.mean((truth >= low) & (truth <= high)))


def quantile_of_column(column: str) -> float:
    """The quantile a ``pNN`` column holds: ``"p10"`` -> 0.1."""
    match = _QUANTILE_COLUMN.match(column)
    if match is None:
        raise ValueError(f"not a quantile column (pNN): {column!r}")
    return int(match.group(1)) / 100.0


def quantile_metrics(y_true: ArrayLike, quantiles: pd.DataFrame) -> dict[str, float]:
    """The held-out metrics a model version is stamped with.

    ``quantiles`` has ``pNN`` columns including ``p50`` (e.g. p10, p50, p90).
    Returns ``wape_p50``, ``pinball_pNN`` per column, ``pinball_mean``, and,
    for the outermost pair (e.g. p10/p90), ``coverage_p10_p90`` and
    ``mean_width_p10_p90`` (in the units of ``y_true``).
    """
    columns = sorted(quantiles.columns, key=quantile_of_column)
    if "p50" not in columns:
        raise ValueError(f"a p50 column is needed, got {columns}")
    out: dict[str, float] = {"wape_p50": wape(y_true, quantiles["p50"])}
    losses = [pinball_loss(y_true, quantiles[c], quantile_of_column(c)) for c in columns]
    out.update({f"pinball_{c}": loss for c, loss in zip(columns, losses, strict=True)})
    out["pinball_mean"] = float(np.mean(losses))
    low, high = columns[0], columns[-1]
    if low != high:
        out[f"coverage_{low}_{high}"] = interval_coverage(y_true, quantiles[low], quantiles[high])
        out[f"mean_width_{low}_{high}"] = float(np.mean(quantiles[high] - quantiles[low]))
    out["n"] = float(len(quantiles))
    return out
