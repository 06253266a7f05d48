"""Which calibration a field's yield interval rests on, and how far to trust it. Pure.

The yield model calibrates its quantiles on its own cross-validated residuals
(:mod:`forecasting.yield_model`). Once a season has been harvested, the
forecasts the chain actually stored for it are the natural calibration set:
they were made the way today's are, from the telemetry as it then stood.
:func:`calibrate_intervals` takes the residuals of those stored forecasts
(:func:`stored_residuals`) once they span :data:`MIN_STORED_SEASONS` seasons,
per crop, at about the same lead as today's forecast (days from the as-of
date to the harvest), and shifts the model's P10
and P90 by their conformal quantiles (split-conformal CQR: the ``q``-th
quantile of ``truth - P_q`` over the calibration rows), widening or narrowing
the interval; then clamps again to what the crop can give
(:meth:`~forecasting.yield_model.YieldQuantileModel.ceiling_t_ha`). Where
there are too few stored residuals it keeps the model's own calibration.

Every forecast row says which: ``calibration`` is :data:`STORED_RESIDUALS`,
:data:`CROSS_VALIDATED` or, for a field not sown yet (its crop's past yields in
the region, no model), :data:`PAST_YIELDS`; ``interval_trust`` and
``training_seasons`` say how many seasons of the crop the interval learned from.

Residuals are taken relative to the crop's catalog potential, so one crop's
fields of different sizes and soils share them; one per field-season (its
stored forecast nearest the lead), because a field forecast daily would
otherwise count thirty times.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from agrimatch.agronomy import CROPS
from forecasting.yield_model import (
    MIN_TRUSTED_SEASONS,
    TRUST_FEW_SEASONS,
    TRUST_OK,
    YieldQuantileModel,
    conformal_shift,
)

CROSS_VALIDATED = "cross_validated"
STORED_RESIDUALS = "stored_residuals"
PAST_YIELDS = "past_yields"

LEAD_TOLERANCE_DAYS = 15  # half the spacing of the training leads (90, 60, 30 days)
# Field-seasons: the fewest for which the P90's conformal order statistic exists
# (ceil((n + 1) 0.9) <= n); with fewer, P10 and P90 would be the extreme residuals.
MIN_STORED_RESIDUALS = 9
# Harvested seasons the stored residuals must span. One season's residuals carry that
# season's weather, not the next one's: calibrated on one, P10-P90 coverage fell from
# 81 % to 65 % on korla-pear and from 84 % to 63 % on yellow-river-jujube (backtest,
# bench/yield_intervals.py, scale 0.1). Two is the least that sees a change of season;
# it has not been measured to be enough.
MIN_STORED_SEASONS = 2

STORED_COLUMNS = (
    "farm",
    "field",
    "year",
    "crop",
    "as_of",
    "yield_t_ha_p10",
    "yield_t_ha_p90",
    "yield_t_ha_p10_model",  # the model's own quantiles before this calibration (NaN: same)
    "yield_t_ha_p90_model",
)
"""Columns of the stored field forecasts :func:`stored_residuals` takes."""

RESIDUAL_COLUMNS = ("farm", "field", "year", "crop", "lead_days", "residual_p10", "residual_p90")
"""``truth - P_q`` over the crop's potential, per stored forecast, with its lead in days."""

INTERVAL_COLUMNS = (
    "interval_trust",
    "training_seasons",
    "calibration",
    "yield_t_ha_p10_model",
    "yield_t_ha_p90_model",
)
"""The columns :func:`calibrate_intervals` adds to the forecasts."""


def stored_residuals(stored: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Residuals of the stored forecasts (:data:`STORED_COLUMNS`) of the seasons in
    ``history`` (harvested, with truth: ``farm``, ``field``, ``year``, ``yield_t_ha``,
    ``harvest_peak``), against the model's own quantiles (before any stored-residual
    calibration), as :data:`RESIDUAL_COLUMNS`. A forecast made on or after its season's
    harvest peak is no forecast and is dropped."""
    if stored.empty or history.empty:
        return pd.DataFrame(columns=list(RESIDUAL_COLUMNS))
    truth = history[["farm", "field", "year", "yield_t_ha", "harvest_peak"]]
    joined = stored.merge(truth, on=["farm", "field", "year"], how="inner")
    lead = [
        (peak - made).days
        for peak, made in zip(joined["harvest_peak"], joined["as_of"], strict=True)
    ]
    joined = joined.assign(lead_days=lead)
    joined = joined[(joined["lead_days"] > 0) & joined["yield_t_ha"].notna()]
    potential = joined["crop"].map(lambda c: CROPS[c].potential_yield_t_ha).to_numpy(float)
    truth_t_ha = joined["yield_t_ha"].to_numpy(float)
    frame = joined[["farm", "field", "year", "crop", "lead_days"]].copy()
    for q in ("p10", "p90"):
        # Rows stored before the model's own quantiles were kept were the model's own.
        base = joined[f"yield_t_ha_{q}_model"].astype(float).fillna(joined[f"yield_t_ha_{q}"])
        frame[f"residual_{q}"] = (truth_t_ha - base.to_numpy(float)) / potential
    return frame.reset_index(drop=True)


def calibrate_intervals(
    forecasts: pd.DataFrame,
    model: YieldQuantileModel,
    residuals: pd.DataFrame,
    history: pd.DataFrame,
    as_of: date,
    from_model: NDArray[np.bool_] | None = None,
) -> pd.DataFrame:
    """``forecasts`` (the chain's per field-season rows: crop, region, planted_on,
    ``yield_t_ha_p10/50/90``, ``harvest_p50`` and the model's features) with each sown
    field's interval recalibrated on ``residuals`` (:func:`stored_residuals`) where its crop
    has at least :data:`MIN_STORED_RESIDUALS` field-seasons within
    :data:`LEAD_TOLERANCE_DAYS` of its lead, and :data:`INTERVAL_COLUMNS` added.
    ``from_model`` marks the rows the yield model forecast (default: those sown by
    ``as_of``); the others rest on their crop's past yields in the region, and
    ``history`` (the harvested seasons) counts the seasons behind them."""
    out = forecasts.copy().reset_index(drop=True)
    out["yield_t_ha_p10_model"] = out["yield_t_ha_p10"].astype(float)
    out["yield_t_ha_p90_model"] = out["yield_t_ha_p90"].astype(float)
    if out.empty:
        return out.assign(interval_trust=[], training_seasons=[], calibration=[])
    sown = (
        out["planted_on"].map(lambda d: d <= as_of).to_numpy(bool)
        if from_model is None
        else np.asarray(from_model, dtype=bool)
    )
    trust = pd.DataFrame(
        {"interval_trust": TRUST_FEW_SEASONS, "training_seasons": 0, "calibration": PAST_YIELDS},
        index=out.index,
    )
    if sown.any():
        mine = out[sown]
        trust.loc[sown, ["interval_trust", "training_seasons"]] = model.interval_trust(mine).values
        trust.loc[sown, "calibration"] = CROSS_VALIDATED
        p10, p90, used = _stored_shifts(mine, residuals, as_of)
        if used.any():
            ceiling = model.ceiling_t_ha(mine)
            p50 = mine["yield_t_ha_p50"].to_numpy(float)
            lower = np.clip(np.minimum(mine["yield_t_ha_p10"].to_numpy(float) + p10, p50), 0, None)
            upper = np.minimum(
                np.maximum(mine["yield_t_ha_p90"].to_numpy(float) + p90, p50),
                np.maximum(ceiling, p50),
            )
            rows = np.flatnonzero(sown)[used]
            out.loc[rows, "yield_t_ha_p10"] = lower[used]
            out.loc[rows, "yield_t_ha_p90"] = upper[used]
            trust.loc[rows, "calibration"] = STORED_RESIDUALS
    if (~sown).any():
        seasons = history.groupby(["crop", "region"])["year"].nunique()
        counts = [
            int(seasons.get((c, r), 0))
            for c, r in zip(out.loc[~sown, "crop"], out.loc[~sown, "region"], strict=True)
        ]
        trust.loc[~sown, "training_seasons"] = counts
        trust.loc[~sown, "interval_trust"] = [
            TRUST_OK if n >= MIN_TRUSTED_SEASONS else TRUST_FEW_SEASONS for n in counts
        ]
    out["interval_trust"] = trust["interval_trust"].astype(str)
    out["training_seasons"] = trust["training_seasons"].astype(int)
    out["calibration"] = trust["calibration"].astype(str)
    return out


def _stored_shifts(
    forecasts: pd.DataFrame, residuals: pd.DataFrame, as_of: date
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the P10 and P90 shifts in t/ha from the stored residuals of its crop near
    its lead, and whether there were enough of them (else shifts of 0)."""
    n = len(forecasts)
    p10, p90, used = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
    if residuals.empty:
        return p10, p90, used
    leads = [
        np.nan if peak is None or pd.isna(peak) else (peak - as_of).days
        for peak in forecasts["harvest_p50"]
    ]
    found: dict[tuple[str, float], tuple[float, float] | None] = {}
    for i, (crop, lead) in enumerate(zip(forecasts["crop"], leads, strict=True)):
        if np.isnan(lead):
            continue
        key = (str(crop), float(lead))
        if key not in found:
            found[key] = _shifts_near(residuals, str(crop), float(lead))
        shifts = found[key]
        if shifts is not None:
            p10[i], p90[i] = shifts
            used[i] = True
    return p10, p90, used


def _shifts_near(residuals: pd.DataFrame, crop: str, lead: float) -> tuple[float, float] | None:
    """The conformal P10 and P90 shifts (t/ha) of ``crop``'s stored residuals within
    :data:`LEAD_TOLERANCE_DAYS` of ``lead``; None when fewer than the minimum, or from
    fewer than :data:`MIN_STORED_SEASONS` seasons."""
    near = residuals[
        (residuals["crop"] == crop) & ((residuals["lead_days"] - lead).abs() <= LEAD_TOLERANCE_DAYS)
    ]
    # One per field-season: the stored forecast nearest this lead.
    near = near.assign(gap=(near["lead_days"] - lead).abs()).sort_values("gap", kind="stable")
    near = near.drop_duplicates(["farm", "field", "year"])
    if len(near) < MIN_STORED_RESIDUALS or near["year"].nunique() < MIN_STORED_SEASONS:
        return None
    potential = CROPS[crop].potential_yield_t_ha
    return (
        conformal_shift(near["residual_p10"].to_numpy(float), 0.1) * potential,
        conformal_shift(near["residual_p90"].to_numpy(float), 0.9) * potential,
    )
