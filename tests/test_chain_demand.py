"""The chain's demand forecaster: the shipped combination, fitted once per input in a process."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from forecasting.chain_data import CAMPAIGN_COLUMNS
from forecasting.chain_demand import demand_forecaster, fitted_demand_forecaster
from forecasting.demand_combination import CombinedDemandForecaster

START = date(2023, 1, 2)  # a Monday
WEEKS = 70


def _weekly(scale: float = 1.0) -> pd.DataFrame:
    # One calm seasonal series, short enough that the fit skips calibration (seconds).
    weeks = [START + timedelta(weeks=k) for k in range(WEEKS)]
    kg = scale * 1000.0 * (1.3 + np.sin(np.arange(WEEKS) * 2 * np.pi / 52))
    return pd.DataFrame(
        {"platform": "pdd", "crop": "garlic", "region": "r", "week": weeks, "quantity_kg": kg}
    )


def test_the_chain_ships_the_combination():
    assert isinstance(demand_forecaster(26), CombinedDemandForecaster)
    assert demand_forecaster(40).get_params()["max_horizon_weeks"] == 40


def test_the_same_inputs_give_the_same_fit_and_weeks_after_the_origin_do_not_matter():
    history, campaigns = _weekly(), pd.DataFrame(columns=list(CAMPAIGN_COLUMNS))
    origin = START + timedelta(weeks=60)
    with threadpool_limits(1):
        first = fitted_demand_forecaster(history, campaigns, origin, 8)
        # A week later the daily job has one more week after the origin: the same fit.
        later = history.copy()
        later.loc[len(later) - 1, "quantity_kg"] *= 5
        assert fitted_demand_forecaster(later, campaigns, origin, 8) is first
        # Another horizon or another history before the origin is another fit.
        assert fitted_demand_forecaster(history, campaigns, origin, 9) is not first
        other = fitted_demand_forecaster(_weekly(2.0), campaigns, origin, 8)
    assert other is not first
    forecast = first.forecast(history, origin, 8, campaigns=campaigns)
    assert len(forecast) == 8 and (forecast["demand_kg_p50"] > 0).all()
