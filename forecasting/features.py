"""Per field-season features as of a date: a pure function from the daily frame to a frame.

Every feature of a season is computed from the daily rows of its field with
``planted_on <= day < as_of`` (and within the crop year, at most 365 days
from planting): nothing on or after ``as_of`` is read, so a backtest "as of"
any date sees exactly what the forecaster would have seen then.

Outages are days without a row (or with NaN sensors). They never fail a
computation and stay visible in ``data_coverage``; sums (rain, ET0,
radiation) and day counts cover observed days only, because rain that was
not measured cannot be invented. Degree-days are the exception: phenology
needs a continuous thermal clock, and an outage read as zero degree-days
would look like a cold spell and delay every predicted harvest, so a missing
day counts the degree-days interpolated between its observed neighbours
(the nearest observed day at either end of the window).

ET0 is Hargreaves' (FAO-56 eq. 52) in its measured-radiation form: eq. 52
needs extraterrestrial radiation Ra (latitude and day of year), which the
daily frame does not carry, but the field measures global radiation Rs, and
Hargreaves' own radiation estimate (FAO-56 eq. 50, ``Rs = kRs sqrt(Tmax -
Tmin) Ra`` with kRs = 0.16 for interior regions) turns eq. 52 into
``ET0 = 0.0023 / 0.16 x (Tmean + 17.8) x 0.408 Rs`` (Tmean the mean of
Tmax and Tmin, Rs in MJ/m2/day, 0.408 mm per MJ/m2).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from agrimatch.agronomy import CROPS, SOILS, CropSpec, SoilSpec
from forecasting.frames import DAILY_FIELD_COLUMNS, FIELD_SEASON_COLUMNS

FEATURE_COLUMNS: tuple[str, ...] = (
    "days_since_planting",  # days of the crop year elapsed before as_of
    "gdd",  # degree-days (deg C d) above the crop's base, capped at its upper temperature
    "gdd_fraction",  # gdd / the crop's gdd_to_maturity
    "rain_mm",
    "et0_mm",  # reference evapotranspiration, Hargreaves radiation form
    "dry_days",  # days with soil moisture at 30 cm below the readily-available-water limit
    "heat_days",  # days with Tmax above the crop's heat-stress threshold
    "radiation_mj_m2",
    "ndvi_max",  # NaN without a canopy camera
    "ndvi_recent",  # mean over the last RECENT_DAYS days; NaN without a camera reading there
    "data_coverage",  # share of the elapsed days with any telemetry
)
"""The numeric features, in column order."""

CATEGORICAL_COLUMNS: tuple[str, ...] = ("crop", "soil", "region")
"""Categorical context columns of the features frame (from the registry)."""

FEATURES_FRAME_COLUMNS: tuple[str, ...] = (*FIELD_SEASON_COLUMNS, "as_of", *FEATURE_COLUMNS)
"""Every column of :func:`field_features`' result, in order."""

RECENT_DAYS = 14
CROP_YEAR_DAYS = 365  # a season's window never reaches its field's next planting
HARGREAVES_KRS = 0.16  # FAO-56 eq. 50, interior (not coastal) locations
MM_PER_MJ_M2 = 0.408  # FAO-56: 1 / latent heat of vaporisation (2.45 MJ/kg)

_SENSOR_COLUMNS = [c for c in DAILY_FIELD_COLUMNS if c not in ("farm", "field", "day")]


def degree_days(
    tmin_c: np.ndarray,
    tmax_c: np.ndarray,
    base_temp_c: float | np.ndarray,
    upper_temp_c: float | np.ndarray,
) -> np.ndarray:
    """Degree-days per day, McMaster & Wilhelm (1997) as the crop catalog defines them:
    both temperatures clamped to [base, upper] before averaging, so neither a cold
    night nor a hot afternoon counts beyond what the crop can use."""
    low, high = base_temp_c, upper_temp_c
    return (np.clip(tmax_c, low, high) + np.clip(tmin_c, low, high)) / 2.0 - low


def crop_degree_days(crop: CropSpec, tmin_c: np.ndarray, tmax_c: np.ndarray) -> np.ndarray:
    """:func:`degree_days` with the crop's base and upper temperatures."""
    return degree_days(tmin_c, tmax_c, crop.base_temp_c, crop.upper_temp_c)


def et0_hargreaves_radiation_mm(
    tmin_c: np.ndarray, tmax_c: np.ndarray, radiation_mj_m2: np.ndarray
) -> np.ndarray:
    """Daily reference ET (mm): FAO-56 eq. 52 with Ra replaced through eq. 50 by measured Rs."""
    tmean = (tmin_c + tmax_c) / 2.0
    et0 = 0.0023 / HARGREAVES_KRS * (tmean + 17.8) * MM_PER_MJ_M2 * radiation_mj_m2
    return np.maximum(et0, 0.0)


def stress_moisture_pct(soil: SoilSpec, crop: CropSpec) -> float:
    """Volumetric moisture below which the crop is water-stressed (FAO-56 eq. 84's onset).

    The crop draws freely on the readily available water, the share ``p`` of
    the soil's available water (field capacity minus wilting point) below
    field capacity; past it, transpiration falls. With p = 0.5 that is halfway
    between wilting point and field capacity.
    """
    return soil.field_capacity_pct - crop.depletion_fraction * soil.available_water_pct


def field_features(daily: pd.DataFrame, seasons: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Features of every field-season in ``seasons`` as of ``as_of`` (one row each, in order).

    ``daily`` has ``DAILY_FIELD_COLUMNS`` (``day`` a date); ``seasons`` has
    ``FIELD_SEASON_COLUMNS``. The result has ``FEATURES_FRAME_COLUMNS``: the
    season's columns, ``as_of`` and ``FEATURE_COLUMNS``. Only daily rows with
    ``planted_on <= day < as_of`` (and within the crop year) are read. A season
    not yet planted has zeros (NaN for NDVI) and full coverage: nothing was
    due. A season with elapsed days but no readings of a variable has NaN for
    the features that need it, and ``data_coverage`` says how much was seen.
    """
    out = seasons.loc[:, list(FIELD_SEASON_COLUMNS)].reset_index(drop=True)
    out["as_of"] = as_of
    if out.empty:
        for column in FEATURE_COLUMNS:
            out[column] = pd.Series(dtype="float64")
        return out.loc[:, list(FEATURES_FRAME_COLUMNS)]

    as_of_day = np.datetime64(as_of, "D")
    planted = _as_days(out["planted_on"])
    window_end = np.minimum(planted + np.timedelta64(CROP_YEAR_DAYS, "D"), as_of_day)
    elapsed = np.maximum((window_end - planted).astype("int64"), 0)
    windows = pd.DataFrame(
        {
            "_row": np.arange(len(out)),
            "farm": out["farm"].to_numpy(),
            "field": out["field"].to_numpy(),
            "_start": planted,
            "_end": window_end,
        }
    )

    rows = _window_rows(daily, windows)
    aggregates = _aggregate(rows, out)
    features = pd.DataFrame(index=pd.RangeIndex(len(out)))
    features["days_since_planting"] = elapsed.astype("float64")
    aggregates.index = aggregates.pop("_row").astype("int64")
    features = features.join(aggregates, how="left")

    observed = features["observed_days"].fillna(0.0)
    # NaN stays NaN (elapsed days, no temperatures); nothing elapsed is zero.
    features["gdd"] = np.where(elapsed == 0, 0.0, features["gdd"])
    gdd_to_maturity = np.array([CROPS[c].gdd_to_maturity for c in out["crop"]])
    features["gdd_fraction"] = features["gdd"] / gdd_to_maturity
    for column in ("rain_mm", "et0_mm", "dry_days", "heat_days", "radiation_mj_m2"):
        features[column] = np.where(elapsed == 0, 0.0, features[column])
    # Nothing due, nothing missing: coverage only falls for days that should have data.
    features["data_coverage"] = np.where(elapsed > 0, observed / np.maximum(elapsed, 1), 1.0)
    for column in FEATURE_COLUMNS:
        out[column] = features[column].astype("float64").to_numpy()
    return out.loc[:, list(FEATURES_FRAME_COLUMNS)]


def _as_days(values: pd.Series) -> np.ndarray:
    """Dates (date objects, strings or timestamps) as numpy day precision."""
    return pd.to_datetime(values).to_numpy().astype("datetime64[D]")


def _window_rows(daily: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """The daily rows inside each season's window, tagged with the season's row number."""
    frame = daily.loc[:, list(DAILY_FIELD_COLUMNS)].copy()
    frame["day"] = _as_days(frame["day"])
    # Only days some window could hold (cheaper merges, and a future day never gets near one).
    in_span = (frame["day"] >= windows["_start"].min()) & (frame["day"] < windows["_end"].max())
    frame = frame.loc[in_span].astype({c: "float64" for c in _SENSOR_COLUMNS})
    # A day must have some reading to count as telemetry.
    frame = frame.dropna(subset=_SENSOR_COLUMNS, how="all")
    if frame.duplicated(["farm", "field", "day"]).any():
        # Two rows for one day (frames concatenated twice): one day, averaged.
        frame = frame.groupby(["farm", "field", "day"], as_index=False)[_SENSOR_COLUMNS].mean()
    merged = windows.merge(frame, on=["farm", "field"], how="inner")
    inside = (merged["day"].to_numpy() >= merged["_start"].to_numpy()) & (
        merged["day"].to_numpy() < merged["_end"].to_numpy()
    )
    return merged.loc[inside].sort_values(["_row", "day"], kind="stable").reset_index(drop=True)


def _aggregate(rows: pd.DataFrame, seasons: pd.DataFrame) -> pd.DataFrame:
    """Per season row (``_row``): sums, counts and maxima over its window's rows."""
    columns = ["_row", "observed_days", "gdd", "rain_mm", "et0_mm", "dry_days", "heat_days",
               "radiation_mj_m2", "ndvi_max", "ndvi_recent"]  # fmt: skip
    if rows.empty:
        return pd.DataFrame(columns=columns).astype("float64")
    # Per season first (few), then spread to its rows (many).
    crops = [CROPS[c] for c in seasons["crop"]]
    at = rows["_row"].to_numpy()
    base = np.array([c.base_temp_c for c in crops])[at]
    upper = np.array([c.upper_temp_c for c in crops])[at]
    heat_limit = np.array([c.heat_stress_threshold_c for c in crops])[at]
    dry_limit = np.array(
        [stress_moisture_pct(SOILS[s], c) for s, c in zip(seasons["soil"], crops, strict=True)]
    )[at]
    tmin = rows["air_temp_min_c"].to_numpy()
    tmax = rows["air_temp_max_c"].to_numpy()
    radiation = rows["solar_rad_mj_m2"].to_numpy()
    moisture = rows["soil_moisture_30cm_pct"].to_numpy()
    ndvi = rows["ndvi"].to_numpy()
    days = rows["day"].to_numpy()

    per_day = pd.DataFrame({"_row": rows["_row"].to_numpy()})
    per_day["gdd_day"] = degree_days(tmin, tmax, base, upper)
    per_day["rain_mm"] = rows["rain_mm"].to_numpy()
    per_day["et0_mm"] = et0_hargreaves_radiation_mm(tmin, tmax, radiation)
    # NaN comparisons are False: an unobserved day is neither dry nor hot.
    per_day["dry_days"] = np.where(np.isnan(moisture), np.nan, moisture < dry_limit)
    per_day["heat_days"] = np.where(np.isnan(tmax), np.nan, tmax > heat_limit)
    per_day["radiation_mj_m2"] = radiation
    per_day["ndvi"] = ndvi
    end = rows["_end"].to_numpy()
    per_day["ndvi_recent"] = np.where(days >= end - np.timedelta64(RECENT_DAYS, "D"), ndvi, np.nan)

    grouped = per_day.groupby("_row")
    # min_count=1: a sum over no observations is unknown (NaN), not zero.
    result = grouped[["rain_mm", "et0_mm", "dry_days", "heat_days", "radiation_mj_m2"]].sum(
        min_count=1
    )
    result["observed_days"] = grouped.size()
    result["ndvi_max"] = grouped["ndvi"].max()
    result["ndvi_recent"] = grouped["ndvi_recent"].mean()
    result["gdd"] = _gap_filled_gdd(rows, per_day["gdd_day"].to_numpy())
    return result.reset_index().loc[:, columns]


def _gap_filled_gdd(rows: pd.DataFrame, gdd_day: np.ndarray) -> pd.Series:
    """Degree-days per season row, missing days linearly interpolated between observed ones.

    Over a gap of ``g`` days between observed days with ``a`` and ``b``
    degree-days, linear interpolation adds ``g (a + b) / 2``; days before the
    first observation (from planting) take the first value, days after the
    last (up to the window's end) the last value.
    """
    has = ~np.isnan(gdd_day)
    obs = pd.DataFrame(
        {
            "_row": rows["_row"].to_numpy()[has],
            "day": rows["day"].to_numpy()[has].astype("datetime64[D]").astype("int64"),
            "gdd": gdd_day[has],
            "start": rows["_start"].to_numpy()[has].astype("datetime64[D]").astype("int64"),
            "end": rows["_end"].to_numpy()[has].astype("datetime64[D]").astype("int64"),
        }
    )
    if obs.empty:
        return pd.Series(dtype="float64")
    grouped = obs.groupby("_row")
    next_day = grouped["day"].shift(-1)
    next_gdd = grouped["gdd"].shift(-1)
    gap = (next_day - obs["day"] - 1).fillna(0.0)
    obs["filled"] = obs["gdd"] + gap * (obs["gdd"] + next_gdd.fillna(0.0)) / 2.0
    first = grouped.head(1).set_index("_row")
    last = grouped.tail(1).set_index("_row")
    lead = (first["day"] - first["start"]) * first["gdd"]
    trail = (last["end"] - last["day"] - 1) * last["gdd"]
    total: pd.Series = obs.groupby("_row")["filled"].sum() + lead + trail
    return total
