"""A synthetic weekly demand series with a yearly season, noise and one level step.

Shared by the demand peers' and the combination's tests: each picks its own step week.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from forecasting.demand_combination import CombinedDemandForecaster
from forecasting.metrics import wape

START = date(2020, 1, 6)
WEEKS = 208


def stepped_series(
    crop: str, factor: float, seed: int, *, step_at: int, weeks: int = WEEKS
) -> pd.DataFrame:
    """``weeks`` of one platform's demand for ``crop``, times ``factor`` from week ``step_at``."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks)
    log_kg = (
        np.log(1000.0)
        + 0.4 * np.cos(2 * np.pi * t / 52)
        + 0.08 * rng.standard_normal(weeks)
        + np.where(t >= step_at, np.log(factor), 0.0)
    )
    return pd.DataFrame(
        {
            "platform": "pdd",
            "crop": crop,
            "region": "r",
            "week": [START + timedelta(weeks=int(k)) for k in t],
            "quantity_kg": np.exp(log_kg),
            "price_cny_per_kg": 5.0,
        }
    )


def combined_forecasts(
    history: pd.DataFrame, origin: date, horizon: int
) -> tuple[CombinedDemandForecaster, dict[str, pd.DataFrame]]:
    """The combination fitted on ``history`` up to ``origin``, and its, our trees' and
    MSTL's forecasts of the ``horizon`` weeks after it."""
    known = history[history["week"] <= origin]
    # Fewer boosting rounds than shipped: these tests are of the combination, not the trees.
    with threadpool_limits(limits=1, user_api="openmp"):
        combined = CombinedDemandForecaster(max_iter=60).fit(known)
        return combined, {
            "combined": combined.forecast(history, origin, horizon),
            "ours": combined.model_.forecast(history, origin, horizon),
            "mstl": combined.peer_.forecast(history, origin, horizon),
        }


def crop_wape(history: pd.DataFrame, forecast: pd.DataFrame, crop: str) -> float:
    """WAPE of ``forecast``'s P50 for ``crop`` against ``history``."""
    truth = history[history["crop"] == crop].set_index("week")["quantity_kg"]
    mine = forecast[forecast["crop"] == crop]
    return wape(truth.loc[list(mine["week"])].to_numpy(), mine["demand_kg_p50"].to_numpy())
