"""A synthetic weekly demand series with a yearly season, noise and one level step.

Shared by the demand peers' and the combination's tests: each picks its own step week.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

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
