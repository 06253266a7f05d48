"""What-if on the real chain: the fitted yield model and climatology as the field model.

:func:`chain_what_if` takes a chain run (its forecasts and market) and a
:class:`~forecasting.whatif.PlanChange`, and recomputes supply, balance,
campaigns and planting for the changed plan with the same yield model and
harvest climatology: areas and crops change the quantities, planting dates
the features and the harvest windows. Nothing is saved.

**Weather scenarios** (:data:`WEATHER_SCENARIOS`). The yield model reads the
season observed so far; it has no weather forecast. A scenario therefore
re-weathers the telemetry of the plan's fields as if the season so far had
been a drought, a heat wave, a wet spell or a frost, and the model answers
with what it learned from such seasons. The rest of the season keeps its
climatology, so the harvest windows only move with planting dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from forecasting.chain import ChainResult, TrainedYieldModel, field_forecasts
from forecasting.chain_data import ChainData, split_seasons
from forecasting.errors import InvalidRequest
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.whatif import FieldModel, PlanChange, WhatIf, what_if


@dataclass(frozen=True, slots=True)
class WeatherShift:
    """How a weather scenario changes the daily telemetry of the season so far."""

    rain_scale: float = 1.0
    soil_moisture_scale: float = 1.0
    tmax_shift_c: float = 0.0
    tmin_shift_c: float = 0.0


# Magnitudes of the simulator's own anomalies (firmware_sim.world.weather): a drought
# keeps a fifth of the rain and dries the profile, a heat wave adds about 4 deg C to the
# afternoons, a wet spell doubles the rain, a frost takes 5 deg C off the nights.
WEATHER_SCENARIOS: Mapping[str, WeatherShift] = {
    "drought": WeatherShift(rain_scale=0.2, soil_moisture_scale=0.6, tmax_shift_c=1.5),
    "heat_wave": WeatherShift(tmax_shift_c=4.0, tmin_shift_c=1.5),
    "wet_spell": WeatherShift(rain_scale=2.0, soil_moisture_scale=1.3),
    "frost": WeatherShift(tmin_shift_c=-5.0),
}


def reweather(daily: pd.DataFrame, fields: pd.DataFrame, shift: WeatherShift) -> pd.DataFrame:
    """``daily`` with the days of ``fields`` (farm, field) changed by ``shift``."""
    keys = set(zip(fields["farm"], fields["field"], strict=True))
    mask = np.fromiter(
        (k in keys for k in zip(daily["farm"], daily["field"], strict=True)),
        dtype=bool,
        count=len(daily),
    )
    out = daily.copy()
    out.loc[mask, "rain_mm"] *= shift.rain_scale
    for column in ("soil_moisture_10cm_pct", "soil_moisture_30cm_pct"):
        out.loc[mask, column] = (out.loc[mask, column] * shift.soil_moisture_scale).clip(0, 100)
    out.loc[mask, "air_temp_max_c"] += shift.tmax_shift_c
    out.loc[mask, "air_temp_min_c"] += shift.tmin_shift_c
    out.loc[mask, "air_temp_mean_c"] += (shift.tmax_shift_c + shift.tmin_shift_c) / 2
    return out


def chain_field_model(data: ChainData, as_of: date, trained: TrainedYieldModel) -> FieldModel:
    """A field model for :func:`~forecasting.whatif.what_if` backed by the chain's models:
    the yield model on the (re-weathered) telemetry so far, degree-day harvest windows."""
    known = data.until(as_of)
    history, _ = split_seasons(known.seasons, as_of)

    def forecast(plan: pd.DataFrame, weather: str | None) -> pd.DataFrame:
        view = known
        if weather is not None:
            view = replace(known, daily=reweather(known.daily, plan, weather_shift(weather)))
        return field_forecasts(view, plan, history, trained.model, as_of, with_drivers=False)

    return forecast


def weather_shift(weather: str) -> WeatherShift:
    """The named scenario's shift; an error naming the known ones otherwise."""
    if weather not in WEATHER_SCENARIOS:
        raise InvalidRequest(
            f"unknown weather scenario {weather!r}; known: {', '.join(sorted(WEATHER_SCENARIOS))}"
        )
    return WEATHER_SCENARIOS[weather]


def chain_what_if(
    data: ChainData,
    as_of: date,
    trained: TrainedYieldModel,
    baseline: ChainResult,
    change: PlanChange,
) -> WhatIf:
    """``baseline``'s fields and those fields under ``change``, through the same models.

    ``baseline`` is the chain's result as of ``as_of`` with ``trained``: its
    outlook is the what-if's baseline, and its market (demand forecast, prices,
    platforms, campaign history) the changed plan's too. Saved nowhere.
    """
    # The basis travels with the plan: a field sown only by its plan keeps its prior.
    columns = [*FIELD_SEASON_COLUMNS, *(["basis"] if "basis" in baseline.forecasts else [])]
    plan = baseline.forecasts[columns].reset_index(drop=True)
    model = chain_field_model(data, as_of, trained)
    return what_if(plan, change, model, baseline.market, baseline=baseline.outlook())
