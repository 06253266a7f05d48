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

``past_yield_ratio`` is the one feature not read from the season's own
telemetry: it comes from the optional ``history`` of recorded yields (see
:func:`field_features`) and obeys the same rule, only seasons whose harvest
ended before ``as_of``. Each past yield is taken relative to what its
season's heat, frost and drought left of the potential
(:func:`recorded_history`), so a field that lost half a crop to a heat wave
is not mistaken for a poorly run one the next season.

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
    "frost_days",  # days with Tmin below the crop's frost-damage temperature
    "radiation_mj_m2",
    "ndvi_max",  # NaN without a canopy camera
    "ndvi_recent",  # mean over the last RECENT_DAYS days; NaN without a camera reading there
    # ndvi_max - ndvi_recent: how far the canopy has fallen from its seasonal peak (early
    # senescence under drought shows here before harvest); NaN without a camera
    "ndvi_drop",
    "data_coverage",  # share of the elapsed days with any telemetry
    # mean of yield / (potential x that season's stress and water factors) over the
    # field's earlier, harvested seasons: its own productivity, the weather taken out
    "past_yield_ratio",
    # exp(-s_heat x heat degree-days in flowering) x exp(-s_frost x frost degree-days in the
    # tender stages), with the crop catalog's sensitivities: the share of the potential that
    # heat and frost have already taken (1: none). See STRESS_FACTOR_COLUMN.
    "stress_factor",
    # 1 - Ky x (1 - Ta/Tp) over the growing days observed so far (FAO-33): Ks from the
    # root zone's moisture (both probes, root_zone_moisture_pct) against the soil's water
    # limits (FAO-56 eq. 84), each day weighted by the crop's potential use (Kc x ET0).
    # See WATER_FACTOR_COLUMN.
    "water_factor",
)
"""The numeric features, in column order."""

STRESS_FACTOR_COLUMN = "stress_factor"
"""The feature the yield model scales the potential by (FAO-33-style multiplicative
factors): a frost or a heat wave no training season had still lowers the forecast,
because the agronomy says by how much, not the history."""

WATER_FACTOR_COLUMN = "water_factor"
"""The water stress seen so far as FAO-33's yield factor. A feature of the season in
progress; of a recorded season (to its harvest), what its past yield is divided by."""

_SEASON_FACTORS = (STRESS_FACTOR_COLUMN, WATER_FACTOR_COLUMN)

CATEGORICAL_COLUMNS: tuple[str, ...] = ("crop", "soil", "region")
"""Categorical context columns of the features frame (from the registry)."""

HISTORY_COLUMNS: tuple[str, ...] = (
    "farm",
    "field",
    "crop",
    "year",
    "yield_t_ha",  # the recorded (true) yield of the season
    "harvest_end",  # when it became known; NaN/None: not harvested yet, never used
)
"""Columns of :func:`field_features`' optional ``history`` of recorded yields; it may
also carry :data:`STRESS_FACTOR_COLUMN` and :data:`WATER_FACTOR_COLUMN`, each season's own
weather factors (see :func:`recorded_history`), by which its yield is divided."""

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


def root_zone_moisture_pct(
    moisture_10cm_pct: np.ndarray, moisture_30cm_pct: np.ndarray
) -> np.ndarray:
    """The root zone's volumetric moisture from the two probes: their mean (each reads
    20 cm of the top 40 cm, where most roots of the catalog's crops are), or the one
    that read where the other did not (NaN where neither did).

    The 30 cm probe alone misses a drought that stunts the canopy early: a small
    canopy draws little from 20-40 cm, so that layer stays wetter than in a normal
    season while the topsoil, where the young roots are, dries out (measured on
    the Yanchuan drought of ``tests/test_yield_model.py``, potato's water factor
    from the 30 cm probe rose from 0.24 to 0.30; from both probes it falls).
    """
    both = (moisture_10cm_pct + moisture_30cm_pct) / 2.0
    return np.where(
        np.isnan(moisture_10cm_pct),
        moisture_30cm_pct,
        np.where(np.isnan(moisture_30cm_pct), moisture_10cm_pct, both),
    )


def water_stress_coefficient(
    moisture_pct: np.ndarray,
    field_capacity_pct: float | np.ndarray,
    wilting_point_pct: float | np.ndarray,
    depletion_fraction: float | np.ndarray,
) -> np.ndarray:
    """FAO-56's Ks (eq. 84) from the root zone's moisture: 1 while the crop draws on the
    readily available water (the share ``depletion_fraction``, p, of the available
    water), falling linearly to 0 at the wilting point; NaN stays NaN."""
    fc, wp, p = field_capacity_pct, wilting_point_pct, depletion_fraction
    ratio = (moisture_pct - wp) / ((1.0 - p) * (fc - wp))
    return np.asarray(np.clip(ratio, 0.0, 1.0), dtype=np.float64)


def field_features(
    daily: pd.DataFrame,
    seasons: pd.DataFrame,
    as_of: date,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Features of every field-season in ``seasons`` as of ``as_of`` (one row each, in order).

    ``daily`` has ``DAILY_FIELD_COLUMNS`` (``day`` a date); ``seasons`` has
    ``FIELD_SEASON_COLUMNS``. The result has ``FEATURES_FRAME_COLUMNS``: the
    season's columns, ``as_of`` and ``FEATURE_COLUMNS``. Only daily rows with
    ``planted_on <= day < as_of`` (and within the crop year) are read. A season
    not yet planted has zeros (NaN for NDVI and the past yield ratio) and full
    coverage: nothing was due. A season with elapsed days but no readings of a
    variable has NaN for the features that need it, and ``data_coverage`` says
    how much was seen.

    ``history`` (optional, ``HISTORY_COLUMNS``: one row per recorded season,
    ``harvest_end`` a date) gives ``past_yield_ratio``: the mean over the
    field's (farm, field) seasons with ``year`` before the season's and
    ``harvest_end < as_of`` of ``yield_t_ha`` / the crop's
    ``potential_yield_t_ha`` (each season by its own crop, so a rotation stays
    comparable; duplicate rows of one season count once; NaN yields are
    skipped), divided by the season's ``stress_factor`` and
    ``water_factor`` where ``history`` has them (:func:`recorded_history`
    adds them). A season harvested on or
    after ``as_of`` is never read. Without
    ``history``, or for a field with no such season, it is NaN: there is no
    fall-back to a regional mean, which would make "no record" look like "an
    average field" (the yield model takes NaN and already sees crop and
    region).
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
    for column in ("rain_mm", "et0_mm", "dry_days", "heat_days", "frost_days", "radiation_mj_m2"):
        features[column] = np.where(elapsed == 0, 0.0, features[column])
    # Nothing observed, nothing lost: heat and frost only count on days with telemetry.
    features["stress_factor"] = features["stress_factor"].fillna(1.0)
    features["water_factor"] = features["water_factor"].fillna(1.0)
    # Nothing due, nothing missing: coverage only falls for days that should have data.
    features["data_coverage"] = np.where(elapsed > 0, observed / np.maximum(elapsed, 1), 1.0)
    features["past_yield_ratio"] = _past_yield_ratio(out, history, as_of_day)
    for column in FEATURE_COLUMNS:
        out[column] = features[column].astype("float64").to_numpy()
    return out.loc[:, list(FEATURES_FRAME_COLUMNS)]


def recorded_history(daily: pd.DataFrame, seasons: pd.DataFrame) -> pd.DataFrame:
    """Recorded seasons as :func:`field_features` takes its ``history``: ``HISTORY_COLUMNS``
    plus each season's own ``stress_factor`` and ``water_factor``, from its telemetry from
    planting to the end of its harvest (1 for a season without any).

    ``seasons`` has ``HISTORY_COLUMNS``, ``planted_on`` and ``soil``; rows
    without a ``harvest_end`` (not harvested) keep factors of 1 and are never
    read as history anyway. Only the season's own days are read, all before
    its harvest ended, so a forecast that may read the yield may read these.
    """
    missing = [c for c in (*HISTORY_COLUMNS, "planted_on", "soil") if c not in seasons.columns]
    if missing:
        raise ValueError(f"seasons lack columns {missing}")
    out = seasons.loc[:, list(HISTORY_COLUMNS)].reset_index(drop=True)
    for column in _SEASON_FACTORS:
        out[column] = 1.0
    ended = pd.to_datetime(seasons["harvest_end"]).notna().to_numpy()
    if not ended.any() or daily.empty:
        return out
    recorded = seasons.loc[ended].reset_index(drop=True)
    planted = _as_days(recorded["planted_on"])
    harvested = _as_days(recorded["harvest_end"]) + np.timedelta64(1, "D")
    windows = pd.DataFrame(
        {
            "_row": np.arange(len(recorded)),
            "farm": recorded["farm"].to_numpy(),
            "field": recorded["field"].to_numpy(),
            "_start": planted,
            "_end": np.minimum(harvested, planted + np.timedelta64(CROP_YEAR_DAYS, "D")),
        }
    )
    rows = _window_rows(daily, windows)
    if rows.empty:
        return out
    factors = _aggregate(rows, recorded).set_index("_row")
    positions = np.flatnonzero(ended)[factors.index.to_numpy(dtype="int64")]
    for column in _SEASON_FACTORS:
        values = out[column].to_numpy().copy()
        values[positions] = factors[column].fillna(1.0).to_numpy()
        out[column] = values
    return out


def _as_days(values: pd.Series) -> np.ndarray:
    """Dates (date objects, strings or timestamps) as numpy day precision."""
    return pd.to_datetime(values).to_numpy().astype("datetime64[D]")


def _past_yield_ratio(
    seasons: pd.DataFrame, history: pd.DataFrame | None, as_of_day: np.datetime64
) -> np.ndarray:
    """Per season row: mean yield / potential of the field's earlier seasons known by as_of."""
    result = np.full(len(seasons), np.nan)
    if history is None:
        return result
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks columns {missing}")
    # NaT (not harvested) compares False: an unknown harvest date is not known truth.
    known = history.loc[_as_days(history["harvest_end"]) < as_of_day]
    if known.empty:
        return result
    unknown = sorted(set(known["crop"]) - set(CROPS))
    if unknown:
        raise ValueError(f"history has crops not in the catalog: {unknown}")
    potential = known["crop"].map(lambda c: CROPS[c].potential_yield_t_ha).astype("float64")
    weather = np.ones(len(known))
    for column in _SEASON_FACTORS:
        if column in known.columns:
            weather = weather * known[column].astype("float64").fillna(1.0).to_numpy()
    # Floored as the yield model floors its scale: a season all but lost to frost says
    # little about the field.
    potential = potential * np.clip(weather, 0.05, 1.0)
    past = pd.DataFrame(
        {
            "farm": known["farm"].to_numpy(),
            "field": known["field"].to_numpy(),
            "_past_year": known["year"].to_numpy(),
            "_ratio": known["yield_t_ha"].astype("float64").to_numpy() / potential.to_numpy(),
        }
    )
    # One value per recorded season, however many rows carry it.
    past = past.groupby(["farm", "field", "_past_year"], as_index=False)["_ratio"].mean()
    rows = pd.DataFrame(
        {
            "_row": np.arange(len(seasons)),
            "farm": seasons["farm"].to_numpy(),
            "field": seasons["field"].to_numpy(),
            "year": seasons["year"].to_numpy(),
        }
    )
    merged = rows.merge(past, on=["farm", "field"], how="inner")
    merged = merged.loc[merged["_past_year"] < merged["year"]]
    means = merged.groupby("_row")["_ratio"].mean()  # skips NaN yields; all NaN -> NaN
    result[means.index.to_numpy(dtype="int64")] = means.to_numpy(dtype="float64")
    return result


def _window_rows(daily: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """The daily rows inside each season's window, tagged with the season's row number."""
    # The windows' farms first: a training set asks for a few fields at a time out of
    # a frame of thousands, and everything below costs per row.
    frame = daily.loc[daily["farm"].isin(windows["farm"].unique()), list(DAILY_FIELD_COLUMNS)]
    frame = frame.assign(day=_as_days(frame["day"]))
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
               "frost_days", "radiation_mj_m2", "ndvi_max", "ndvi_recent", "ndvi_drop",
               "stress_factor", "water_factor"]  # fmt: skip
    if rows.empty:
        return pd.DataFrame(columns=columns).astype("float64")
    # Per season first (few), then spread to its rows (many).
    crops = [CROPS[c] for c in seasons["crop"]]
    at = rows["_row"].to_numpy()
    base = np.array([c.base_temp_c for c in crops])[at]
    upper = np.array([c.upper_temp_c for c in crops])[at]
    heat_limit = np.array([c.heat_stress_threshold_c for c in crops])[at]
    frost_limit = np.array([c.frost_damage_temp_c for c in crops])[at]
    dry_limit = np.array(
        [stress_moisture_pct(SOILS[s], c) for s, c in zip(seasons["soil"], crops, strict=True)]
    )[at]
    tmin = rows["air_temp_min_c"].to_numpy()
    tmax = rows["air_temp_max_c"].to_numpy()
    radiation = rows["solar_rad_mj_m2"].to_numpy()
    moisture = rows["soil_moisture_30cm_pct"].to_numpy()
    root_zone = root_zone_moisture_pct(rows["soil_moisture_10cm_pct"].to_numpy(), moisture)
    ndvi = rows["ndvi"].to_numpy()
    days = rows["day"].to_numpy()

    per_day = pd.DataFrame({"_row": rows["_row"].to_numpy()})
    per_day["gdd_day"] = degree_days(tmin, tmax, base, upper)
    per_day["rain_mm"] = rows["rain_mm"].to_numpy()
    per_day["et0_mm"] = et0_hargreaves_radiation_mm(tmin, tmax, radiation)
    # NaN comparisons are False: an unobserved day is neither dry nor hot.
    per_day["dry_days"] = np.where(np.isnan(moisture), np.nan, moisture < dry_limit)
    per_day["heat_days"] = np.where(np.isnan(tmax), np.nan, tmax > heat_limit)
    per_day["frost_days"] = np.where(np.isnan(tmin), np.nan, tmin < frost_limit)
    per_day["radiation_mj_m2"] = radiation
    per_day["ndvi"] = ndvi
    end = rows["_end"].to_numpy()
    per_day["ndvi_recent"] = np.where(days >= end - np.timedelta64(RECENT_DAYS, "D"), ndvi, np.nan)

    grouped = per_day.groupby("_row")
    # min_count=1: a sum over no observations is unknown (NaN), not zero.
    counted = ["rain_mm", "et0_mm", "dry_days", "heat_days", "frost_days", "radiation_mj_m2"]
    result = grouped[counted].sum(min_count=1)
    result["observed_days"] = grouped.size()
    result["ndvi_max"] = grouped["ndvi"].max()
    result["ndvi_recent"] = grouped["ndvi_recent"].mean()
    result["ndvi_drop"] = result["ndvi_max"] - result["ndvi_recent"]
    result["gdd"] = _gap_filled_gdd(rows, per_day["gdd_day"].to_numpy())
    progress = _progress(per_day, crops, at)
    result["stress_factor"] = _stress_factor(per_day, crops, at, tmin, tmax, progress)
    soils = [SOILS[name] for name in seasons["soil"]]
    result["water_factor"] = _water_factor(
        per_day, crops, soils, at, root_zone, per_day["et0_mm"].to_numpy(), progress
    )
    return result.reset_index().loc[:, columns]


# Thermal-time share by which an annual has emerged: frost counts from here (as the
# simulator's crop model, firmware_sim.world.crop, has it from FAO-56's stage shares).
EMERGED = 0.05


def _progress(per_day: pd.DataFrame, crops: list[CropSpec], at: np.ndarray) -> np.ndarray:
    """Per daily row: the season's thermal-time share by the end of that day."""
    to_maturity = np.array([c.gdd_to_maturity for c in crops])[at]
    gained = per_day["gdd_day"].fillna(0.0).groupby(per_day["_row"]).cumsum().to_numpy()
    return np.asarray(gained / to_maturity, dtype=np.float64)


def _water_factor(
    per_day: pd.DataFrame,
    crops: list[CropSpec],
    soils: list[SoilSpec],
    at: np.ndarray,
    moisture_pct: np.ndarray,
    et0_mm: np.ndarray,
    progress: np.ndarray,
) -> pd.Series:
    """Per season row: FAO-33's water factor of the growing days observed so far.

    Ks comes from the root zone's moisture (:func:`root_zone_moisture_pct`)
    as FAO-56 eq. 84 has it (:func:`water_stress_coefficient`); each day
    weighs by the crop's potential use, Kc (the catalog's stage curve, FAO-56
    eq. 66) x ET0. Days without moisture or ET0 are
    skipped, so the ratio is that of the days seen; none seen gives NaN.
    """
    names = np.array([c.name for c in crops])[at]
    kc = np.empty(len(progress))
    for crop in {c.name: c for c in crops}.values():
        mine = names == crop.name
        kc[mine] = crop.kc_at(progress[mine])
    fc = np.array([s.field_capacity_pct for s in soils])[at]
    wp = np.array([s.wilting_point_pct for s in soils])[at]
    p = np.array([c.depletion_fraction for c in crops])[at]
    ks = water_stress_coefficient(moisture_pct, fc, wp, p)
    demand = kc * et0_mm
    seen = ~np.isnan(ks) & ~np.isnan(demand) & (progress <= 1.0)
    frame = pd.DataFrame(
        {
            "_row": per_day["_row"].to_numpy(),
            "used": np.where(seen, ks * demand, 0.0),
            "demand": np.where(seen, demand, 0.0),
        }
    )
    sums = frame.groupby("_row")[["used", "demand"]].sum()
    ratio = sums["used"] / sums["demand"].where(sums["demand"] > 0)
    ky = pd.Series([c.ky for c in crops]).reindex(sums.index.to_numpy()).to_numpy()
    return (1.0 - ky * (1.0 - ratio)).clip(lower=0.0)


def _stress_factor(
    per_day: pd.DataFrame,
    crops: list[CropSpec],
    at: np.ndarray,
    tmin: np.ndarray,
    tmax: np.ndarray,
    progress: np.ndarray,
) -> pd.Series:
    """Per season row: the heat and frost yield factors of the days observed so far.

    The stage of each day comes from the degree-days accumulated to it over the
    crop's ``gdd_to_maturity`` (unobserved days add none, so stages run a little
    late across outages): heat counts in mid-season (flowering and yield
    formation), frost from bud break to fruit set in orchards and from emergence
    to the end of mid-season in annuals, as the crop catalog's header says.
    """
    stage_ends = np.array([c.stage_ends for c in crops])[at]
    perennial = np.array([c.perennial for c in crops])[at]
    heat_sens = np.array([c.heat_sensitivity_per_degree_day for c in crops])[at]
    frost_sens = np.array([c.frost_sensitivity_per_degree_day for c in crops])[at]
    heat_limit = np.array([c.heat_stress_threshold_c for c in crops])[at]
    frost_limit = np.array([c.frost_damage_temp_c for c in crops])[at]
    flowering = (progress > stage_ends[:, 1]) & (progress <= stage_ends[:, 2])
    tender = np.where(
        perennial,
        progress <= stage_ends[:, 1],
        (progress > EMERGED) & (progress <= stage_ends[:, 2]),
    )
    heat_dd = np.where(flowering, np.maximum(0.0, np.nan_to_num(tmax - heat_limit)), 0.0)
    frost_dd = np.where(tender, np.maximum(0.0, np.nan_to_num(frost_limit - tmin)), 0.0)
    lost = pd.Series(heat_sens * heat_dd + frost_sens * frost_dd).groupby(
        per_day["_row"].to_numpy()
    )
    return np.exp(-lost.sum())


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
