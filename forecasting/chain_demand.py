"""The chain's demand forecaster: which one ships, fitted once per input in a process.

Which: our quantile trees combined with MSTL per series
(:class:`~forecasting.demand_combination.CombinedDemandForecaster`), not the trees
alone. On the backtest's six scenarios the combination beat the trees' P50 WAPE on
five (not jujube-scare: 18.1 vs 17.3 %), brought P10-P90 coverage from 57-70 % to
78-90 % for a nominal 80 %, and follows a lasting level shift that the trees count
twice once its anniversary comes (snow-lotus-surge 19.8 vs 90.7 %). On the four
markets' held-out year it costs a point of WAPE (12.9 vs 11.9 %) for coverage 85 vs
76 % (docs/benchmarks.md, "Demand vs statistical peers").

Once per input: the combination fits the trees twice (once on the history before its
last year, to weigh and calibrate against MSTL there), about 3x the trees' CPU
time. A fit is a pure function of the weekly demand up to the origin, the campaigns,
the origin and the horizon, and the chain asks for the same one again and again: the
daily job every day of a week (the origin is the last whole week), the API for each
what-if on a date. So a process keeps its last few fits (:data:`FITS_KEPT`), keyed by a
hash of those inputs; the demand forecaster is never stored on disk, so no stored
model of another type or library version can come back.
"""

from __future__ import annotations

import threading
from datetime import date

import joblib
import pandas as pd
from cachetools import LRUCache, cached

from forecasting.demand_combination import CombinedDemandForecaster
from forecasting.demand_model import DemandForecaster

FITS_KEPT = 4  # fitted forecasters a process keeps (a few dates or what-if horizons)


def demand_forecaster(horizon_weeks: int) -> DemandForecaster:
    """The demand forecaster the chain ships, unfitted (see module)."""
    return CombinedDemandForecaster(max_horizon_weeks=horizon_weeks)


def _fit_key(
    history_weekly: pd.DataFrame, campaigns: pd.DataFrame, origin_week: date, horizon_weeks: int
) -> str:
    # Only the weeks up to the origin are fitted on: later ones must not miss the cache.
    known = history_weekly[history_weekly["week"] <= origin_week]
    return str(joblib.hash((known, campaigns, origin_week, horizon_weeks)))


@cached(LRUCache(maxsize=FITS_KEPT), key=_fit_key, lock=threading.Lock())
def fitted_demand_forecaster(
    history_weekly: pd.DataFrame, campaigns: pd.DataFrame, origin_week: date, horizon_weeks: int
) -> DemandForecaster:
    """:func:`demand_forecaster` fitted on ``history_weekly``'s weeks up to ``origin_week``
    and ``campaigns``; the same inputs give back the same fitted forecaster (do not refit
    it: it is shared)."""
    known = history_weekly[history_weekly["week"] <= origin_week]
    return demand_forecaster(horizon_weeks).fit(known, campaigns=campaigns)
