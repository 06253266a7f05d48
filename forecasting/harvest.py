"""Harvest windows by degree-days, and the weekly supply curve they imply. Pure.

**Harvest window.** A crop matures when its degree-days since planting reach
the catalog's ``gdd_to_maturity``. As of a date, the degree-days so far are
observed (:func:`forecasting.features.field_features`); the rest of the
season comes from a daily climatology of the region (:func:`gdd_climatology`:
mean and spread of the crop's degree-days per day of year, from past daily
frames). The remaining sum is treated as normal, with mean the sum of the
daily means and variance the sum of the daily variances inflated for
day-to-day persistence (AR(1) residuals with the lag-one autocorrelation the
history shows): warm spells last, so their days do not average out. That
gives a distribution of the maturity day; the harvest of a field's produce
then spreads over the crop's ``harvest_spread_days`` after maturity
(triangular, peaking at 40 % of the spread: picking ramps up quickly and
tails off), and the P10/P50/P90 harvest dates are quantiles of maturity plus
that spread: the days by which 10, 50 and 90 % of the field's produce is in.

**Weekly supply.** A field's quantity (yield × area) is spread over its
window as a triangular density whose 10th and 90th percentiles sit at P10 and
P90 and whose mode is P50; each kilogram loses the crop's
``postharvest_loss_per_week`` for ``loss_weeks`` weeks between harvest and
sale; weeks are Mondays. Quantiles combine across fields per crop, region and
week: P50 is the sum of the fields' P50s; P10 and P90 add the fields' lower
and upper spreads (from their yield quantiles, as normal standard
deviations) in variance, independent fields by default, or with a common
correlation ``field_correlation`` (weather hits a region's fields alike).
The weekly bands carry the yield uncertainty; the timing uncertainty is in
the spread over weeks.

**Killing frost.** The simulator ends a season at the first killing frost
(:mod:`agrimatch.agronomy.frost`: an annual past its initial stage — so
autumn-sown garlic overwinters — an orchard once its fruit has set), and a
crop that never matured keeps the share of yield the same module's
:func:`~agrimatch.agronomy.frost.yield_kept_at_end` gives for the thermal time
it got (an annual its completed grain or fruit filling, an orchard the square
of its thermal time). The projection mirrors that rule: the climatology also holds each day
of year's chance of a night at or below the crop's killing temperature
(normal minimum temperatures per day of year), the days on which the crop is
vulnerable follow from the mean degree-day path, and the season ends at
maturity or at the first killing frost, whichever comes first (days taken as
independent). The harvest then spreads from that end as from maturity, and
the field's yield quantiles are scaled by the expected share kept
(:attr:`HarvestWindow.yield_factor`), so supply and the balance end at the
frost with the loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy.special import ndtr

from agrimatch.agronomy import CROPS, CropSpec
from agrimatch.agronomy.cultivars import gdd_to_maturity
from agrimatch.agronomy.frost import killing_temperature_c, vulnerable, yield_kept_at_end
from forecasting.features import crop_degree_days
from forecasting.frames import SUPPLY_COLUMNS

# Index 0 = 1 January. Leap years put every day after February one slot later,
# which the pooled window makes harmless.
DAYS_OF_YEAR = 366
CLIMATOLOGY_WINDOW_DAYS = 15  # days either side pooled into a day of year's statistics
HARVEST_PEAK_SHARE = 0.4  # where in the harvest spread picking peaks
HORIZON_DAYS = 400  # how far a projection looks ahead; a crop not mature by then is cut
Z90 = 1.2815515655446004  # standard normal 90th percentile

HARVEST_WINDOW_COLUMNS = ("harvest_p10", "harvest_p50", "harvest_p90")
YIELD_QUANTILE_COLUMNS = ("yield_t_ha_p10", "yield_t_ha_p50", "yield_t_ha_p90")
SUPPLY_INPUT_COLUMNS = (
    "crop",
    "region",
    "area_ha",
    *YIELD_QUANTILE_COLUMNS,
    *HARVEST_WINDOW_COLUMNS,
)
"""What :func:`weekly_supply` needs per field (yields in t/ha, harvest dates as dates)."""


@dataclass(frozen=True, slots=True, eq=False)
class Climatology:
    """A region's daily degree-days for one crop, per day of year (index 0 = 1 January)."""

    crop: str
    mean_gdd: np.ndarray  # (366,) mean degree-days of that day of year
    sd_gdd: np.ndarray  # (366,) day-to-day spread around the mean
    lag1_autocorrelation: float  # persistence of the daily anomalies
    days: int  # region-days of history behind it
    # (366,) chance of a killing frost for the crop (agronomy.frost) on that day of year;
    # None: not known (no minimum temperatures), no frost is projected.
    p_killing_frost: np.ndarray | None = None

    def daily(self, first: date, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread of the degree-days of ``count`` days from ``first``."""
        index = _day_of_year_index(first, count)
        return self.mean_gdd[index], self.sd_gdd[index]

    def frost_chance(self, first: date, count: int) -> np.ndarray:
        """Chance of a killing frost on each of ``count`` days from ``first`` (0 if unknown)."""
        if self.p_killing_frost is None:
            return np.zeros(count)
        return self.p_killing_frost[_day_of_year_index(first, count)]


def _day_of_year_index(first: date, count: int) -> np.ndarray:
    days = np.datetime64(first, "D") + np.arange(count)
    return (days - days.astype("datetime64[Y]")).astype("int64")


@dataclass(frozen=True, slots=True)
class HarvestWindow:
    """The days by which 10, 50 and 90 % of a field's produce is expected to be harvested,
    the chance that a killing frost ends the season before maturity, and the expected share
    of the yield kept (1: none lost to an early end)."""

    p10: date
    p50: date
    p90: date
    p_frost_end: float = 0.0
    yield_factor: float = 1.0


def gdd_climatology(
    daily: pd.DataFrame, crop: CropSpec | str, window_days: int = CLIMATOLOGY_WINDOW_DAYS
) -> Climatology:
    """The crop's daily degree-day climatology from past daily frames of one region.

    The region's fields are averaged per day (one weather, many sensors); each
    day of year pools the days within ``window_days`` of it across years, since
    a few years cannot give a day of its own a stable mean. Days of year with
    no history at all (telemetry only runs in season) are interpolated around
    the calendar from the nearest days that have some. Raises ValueError when
    ``daily`` holds no temperatures.
    """
    spec = CROPS[crop] if isinstance(crop, str) else crop
    frame = daily.dropna(subset=["air_temp_min_c", "air_temp_max_c"])
    if frame.empty:
        raise ValueError(f"no temperatures to build a {spec.name} degree-day climatology from")
    gdd = crop_degree_days(
        spec, frame["air_temp_min_c"].to_numpy(float), frame["air_temp_max_c"].to_numpy(float)
    )
    days = pd.to_datetime(frame["day"]).to_numpy().astype("datetime64[D]")
    region = pd.Series(gdd).groupby(days).mean()  # sorted by day
    ordinals = region.index.to_numpy().astype("datetime64[D]").astype("int64")
    doy = pd.DatetimeIndex(region.index).day_of_year.to_numpy() - 1
    values = region.to_numpy()

    mean, sd, residual = _day_of_year_normals(doy, values, window_days)

    consecutive = np.flatnonzero(np.diff(ordinals) == 1)
    rho = 0.0
    if consecutive.size > 2:
        a, b = residual[consecutive], residual[consecutive + 1]
        if np.std(a) > 0 and np.std(b) > 0:
            rho = float(np.corrcoef(a, b)[0, 1])
    return Climatology(
        crop=spec.name,
        mean_gdd=np.maximum(mean, 0.0),
        sd_gdd=sd,
        lag1_autocorrelation=float(np.clip(rho, 0.0, 0.95)),
        days=len(values),
        p_killing_frost=_killing_frost_chance(spec, frame, window_days),
    )


def _killing_frost_chance(spec: CropSpec, frame: pd.DataFrame, window_days: int) -> np.ndarray:
    """Per day of year, the chance that the night's minimum is at or below the crop's killing
    temperature (:func:`agrimatch.agronomy.frost.killing_temperature_c`).

    The region's minima (fields averaged per day) pooled over the days within
    ``window_days`` of each day of year are taken as normal: a few winters
    hold too few killing nights to count them, but their mean and spread
    place the tail. Days of year with no history are interpolated around the
    calendar, as the degree-days are.
    """
    days = pd.to_datetime(frame["day"]).to_numpy().astype("datetime64[D]")
    tmin = pd.Series(frame["air_temp_min_c"].to_numpy(float)).groupby(days).mean()
    doy = pd.DatetimeIndex(tmin.index).day_of_year.to_numpy() - 1
    values = tmin.to_numpy()
    mean, sd, _ = _day_of_year_normals(doy, values, window_days)
    z = (killing_temperature_c(spec) - mean) / np.maximum(sd, 0.1)
    return np.asarray(ndtr(z), dtype=float)


def _day_of_year_normals(
    doy: np.ndarray, values: np.ndarray, window_days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per day of year, the mean and standard deviation of ``values`` pooled over the days
    within ``window_days`` (gaps interpolated around the calendar), and each value's
    residual from its day's mean."""
    counts = _pooled(np.bincount(doy, minlength=DAYS_OF_YEAR).astype(float), window_days)
    sums = _pooled(np.bincount(doy, weights=values, minlength=DAYS_OF_YEAR), window_days)
    mean = _fill_circular(
        np.divide(sums, counts, out=np.full(DAYS_OF_YEAR, np.nan), where=counts > 0)
    )
    residual = values - mean[doy]
    squares = _pooled(np.bincount(doy, weights=residual**2, minlength=DAYS_OF_YEAR), window_days)
    variance = np.divide(squares, counts - 1, out=np.full(DAYS_OF_YEAR, np.nan), where=counts > 1)
    sd = _fill_circular(np.sqrt(variance), fallback=float(np.std(residual)))
    return mean, sd, residual


def _pooled(per_day: np.ndarray, window_days: int) -> np.ndarray:
    """Sum of ``per_day`` over the days within ``window_days`` of each day, around the year."""
    wrapped = np.concatenate([per_day[-window_days:], per_day, per_day[:window_days]])
    cumulative = np.concatenate([[0.0], np.cumsum(wrapped)])
    width = 2 * window_days + 1
    return cumulative[width:] - cumulative[:-width]


def _fill_circular(values: np.ndarray, fallback: float = 0.0) -> np.ndarray:
    """NaNs interpolated linearly around the calendar; all NaN → ``fallback``."""
    known = np.flatnonzero(~np.isnan(values))
    if known.size == 0:
        return np.full(len(values), fallback)
    index = np.arange(len(values))
    return np.interp(index, known, values[known], period=len(values))


def harvest_window(
    crop: CropSpec | str,
    climatology: Climatology,
    planted_on: date,
    as_of: date,
    gdd_so_far: float,
    region: str | None = None,
) -> HarvestWindow:
    """P10/P50/P90 harvest dates of a field planted on ``planted_on``, as of ``as_of``, and
    what a killing frost would take.

    ``gdd_so_far`` is the degree-days observed from planting to the day before
    ``as_of`` (the features' ``gdd``); NaN means none are known and the
    projection starts at planting. The days from ``max(as_of, planted_on)`` on
    follow the climatology; the season ends at maturity (the degree-days of
    the cultivar grown in ``region``, :func:`agrimatch.agronomy.cultivars.gdd_to_maturity`)
    or at the first killing frost before it (module docstring). A crop already
    past maturity matured, by the climatology, as many days ago as its surplus
    degree-days took.
    """
    spec = CROPS[crop] if isinstance(crop, str) else crop
    start, done = as_of, float(gdd_so_far)
    if as_of <= planted_on or np.isnan(done):
        start, done = planted_on, 0.0
    required = gdd_to_maturity(spec, region)
    remaining = required - done
    p_frost, factor = 0.0, 1.0
    if remaining > 0:
        anchor, maturity = start, _maturity_pmf(climatology, start, remaining)
        # The planting day itself cannot end the season (the simulator's rule too).
        after = 1 if start == planted_on else 0
        end, p_frost, factor = _season_end(
            spec, climatology, start, done, required, maturity, after
        )
    else:
        anchor, end = _past_maturity(climatology, start, -remaining), np.ones(1)
    # The produce comes in over the harvest spread after the season's end.
    pmf = np.convolve(end, _spread_pmf(spec.harvest_spread_days))
    cdf = np.cumsum(pmf) / pmf.sum()
    p10, p50, p90 = (int(np.searchsorted(cdf, q)) for q in (0.1, 0.5, 0.9))
    return HarvestWindow(
        anchor + timedelta(days=p10),
        anchor + timedelta(days=p50),
        anchor + timedelta(days=p90),
        p_frost_end=p_frost,
        yield_factor=factor,
    )


def _season_end(
    spec: CropSpec,
    climatology: Climatology,
    start: date,
    done_gdd: float,
    required_gdd: float,
    maturity: np.ndarray,
    after: int,
) -> tuple[np.ndarray, float, float]:
    """Chance that the season ends on each day from ``start`` (index 0), the chance that a
    killing frost ends it, and the expected share of yield kept.

    The season ends on day j at maturity (``maturity[j]``) if no killing frost
    came before, or at a killing frost on day j if it had not matured by then;
    a frost can only kill on days the crop is vulnerable by its mean progress
    (:func:`agrimatch.agronomy.frost.vulnerable`) and not before index
    ``after``. A season ended by frost keeps the share of yield the simulator's
    crop keeps at that progress (:func:`agrimatch.agronomy.frost.yield_kept_at_end`).
    """
    count = len(maturity)
    mean, _ = climatology.daily(start, count)
    progress = (done_gdd + np.cumsum(mean)) / required_gdd
    hazard = climatology.frost_chance(start, count) * vulnerable(spec, progress)
    hazard[:after] = 0.0
    no_frost_before = np.concatenate([[1.0], np.cumprod(1.0 - hazard)[:-1]])
    not_matured = 1.0 - np.cumsum(maturity)  # not matured by the end of day j
    by_maturity = maturity * no_frost_before
    by_frost = hazard * no_frost_before * np.clip(not_matured, 0.0, 1.0)
    kept = float(by_maturity.sum() + (by_frost * yield_kept_at_end(spec, progress)).sum())
    return by_maturity + by_frost, float(by_frost.sum()), kept


def _maturity_pmf(climatology: Climatology, start: date, remaining_gdd: float) -> np.ndarray:
    """Chance that maturity falls on each day from ``start`` (index 0) on.

    P(matured by day j) = P(degree-days of days 0..j >= remaining), the sum
    normal with the climatology's mean and AR(1)-inflated variance. Mass the
    horizon never reaches goes to its last day.
    """
    mean, sd = climatology.daily(start, HORIZON_DAYS)
    n = np.arange(1, HORIZON_DAYS + 1, dtype=float)
    rho = climatology.lag1_autocorrelation
    # Var(sum of n AR(1) terms) / (n sigma^2) = 1 + 2 sum_k (1 - k/n) rho^k, in closed form.
    inflation = 1.0 + 2.0 * rho / (1.0 - rho) - 2.0 * rho * (1.0 - rho**n) / (n * (1.0 - rho) ** 2)
    cumulative_mean = np.cumsum(mean)
    cumulative_sd = np.sqrt(np.cumsum(sd**2) * inflation)
    z = (cumulative_mean - remaining_gdd) / np.maximum(cumulative_sd, 1e-9)
    cdf = np.maximum.accumulate(ndtr(z))  # a sum that only grows crosses once
    cdf[-1] = 1.0
    return np.diff(cdf, prepend=0.0)


def _past_maturity(climatology: Climatology, start: date, surplus_gdd: float) -> date:
    """The day a crop with ``surplus_gdd`` degree-days past maturity by ``start`` matured."""
    back = np.arange(1, HORIZON_DAYS + 1)
    mean, _ = climatology.daily(start - timedelta(days=HORIZON_DAYS), HORIZON_DAYS)
    # Degree-days of the days before start, walking back one day at a time.
    behind = np.cumsum(mean[::-1])
    days_ago = int(back[min(int(np.searchsorted(behind, surplus_gdd)), HORIZON_DAYS - 1)])
    return start - timedelta(days=days_ago)


def _spread_pmf(spread_days: float) -> np.ndarray:
    """Share of a field's produce harvested on each day after maturity: triangular over
    ``[0, spread_days]``, peaking at ``HARVEST_PEAK_SHARE`` of it."""
    spread = max(1, round(spread_days))
    edges = np.arange(spread + 2) - 0.5
    cdf = _triangular_cdf(edges, 0.0, HARVEST_PEAK_SHARE * spread, float(spread))
    return np.diff(cdf)


def _triangular_cdf(x: np.ndarray, low: float, mode: float, high: float) -> np.ndarray:
    """CDF of the triangular distribution on ``[low, high]`` with ``mode``."""
    x = np.clip(np.asarray(x, dtype=float), low, high)
    width = high - low
    if width <= 0:
        return (x >= high).astype(float)
    rising = (x - low) ** 2 / (width * (mode - low)) if mode > low else np.zeros_like(x)
    falling = 1.0 - (high - x) ** 2 / (width * (high - mode)) if high > mode else np.ones_like(x)
    return np.where(x <= mode, rising, falling)


def harvest_windows(
    features: pd.DataFrame, climatologies: Mapping[tuple[str, str], Climatology]
) -> pd.DataFrame:
    """``features`` (from :func:`~forecasting.features.field_features`) with
    ``HARVEST_WINDOW_COLUMNS``, ``p_frost_end`` and ``frost_yield_factor`` added, one
    window per row, and its ``YIELD_QUANTILE_COLUMNS`` (when present) scaled by the share
    a killing frost is expected to leave; ``climatologies`` is keyed by (crop, region).
    Raises KeyError naming a (crop, region) without a climatology."""
    out = features.copy()
    windows = []
    for row in features.itertuples(index=False):
        key = (str(row.crop), str(row.region))
        if key not in climatologies:
            raise KeyError(f"no degree-day climatology for crop {key[0]} in region {key[1]}")
        windows.append(
            harvest_window(
                key[0],
                climatologies[key],
                _as_date(row.planted_on),
                _as_date(row.as_of),
                row.gdd,
                region=key[1],
            )
        )
    for column, quantile in zip(HARVEST_WINDOW_COLUMNS, ("p10", "p50", "p90"), strict=True):
        out[column] = [getattr(w, quantile) for w in windows]
    out["p_frost_end"] = [w.p_frost_end for w in windows]
    out["frost_yield_factor"] = factor = np.array([w.yield_factor for w in windows], dtype=float)
    for column in YIELD_QUANTILE_COLUMNS:
        if column in out:
            out[column] = out[column].to_numpy(dtype=float) * factor
    return out


def _as_date(value: object) -> date:
    return pd.Timestamp(value).date()


def weekly_supply(
    fields: pd.DataFrame, loss_weeks: float = 1.0, field_correlation: float = 0.0
) -> pd.DataFrame:
    """Weekly supply (kg) per crop, region and week, columns ``SUPPLY_COLUMNS``.

    ``fields`` has ``SUPPLY_INPUT_COLUMNS``, one row per field-season. Each
    field's quantity is spread over its harvest window (a triangular density
    with its 10th/90th percentiles at the window's P10/P90 and its mode at
    P50), less ``loss_weeks`` weeks of the crop's post-harvest loss, and
    summed per week (the Monday). P50s add up; the P10/P90 spreads add in
    variance with correlation ``field_correlation`` between fields (0:
    independent). Rows are ordered by crop, region, week.
    """
    if not 0.0 <= field_correlation <= 1.0:
        raise ValueError("field_correlation must be within [0, 1]")
    if fields.empty:
        return _empty_supply()
    # Columns gathered as arrays and framed once: a frame per field cost more than the
    # arithmetic (5.6 s of a 1,000-field chain run).
    crops: list[str] = []
    regions: list[str] = []
    weeks_all: list[date] = []
    p50s, lows, highs = [], [], []
    for row in fields.itertuples(index=False):
        spec = CROPS[str(row.crop)]
        kept = (1.0 - spec.postharvest_loss_per_week) ** loss_weeks
        kg = [float(getattr(row, c)) * float(row.area_ha) * 1000.0 * kept
              for c in YIELD_QUANTILE_COLUMNS]  # fmt: skip
        window = [_as_date(getattr(row, c)) for c in HARVEST_WINDOW_COLUMNS]
        days, shares = _daily_shares(*window)
        ordinals = np.array([d.toordinal() - d.weekday() for d in days])
        mondays, index = np.unique(ordinals, return_inverse=True)
        share = np.bincount(index, weights=shares)
        crops.extend([spec.name] * len(mondays))
        regions.extend([str(row.region)] * len(mondays))
        weeks_all.extend(date.fromordinal(int(o)) for o in mondays)
        p50s.append(kg[1] * share)
        # Normal spreads below and above the median, from the yield quantiles.
        lows.append(max(kg[1] - kg[0], 0.0) / Z90 * share)
        highs.append(max(kg[2] - kg[1], 0.0) / Z90 * share)
    per_field = pd.DataFrame(
        {
            "crop": crops,
            "region": regions,
            "week": weeks_all,
            "supply_kg_p50": np.concatenate(p50s),
            "sd_low": np.concatenate(lows),
            "sd_high": np.concatenate(highs),
        }
    )
    per_field["var_low"] = per_field["sd_low"] ** 2
    per_field["var_high"] = per_field["sd_high"] ** 2
    grouped = per_field.groupby(["crop", "region", "week"], sort=True)
    total = grouped[["supply_kg_p50", "sd_low", "sd_high", "var_low", "var_high"]].sum()
    rho = field_correlation
    # Var(sum) with a common correlation: (1 - rho) sum(sd^2) + rho (sum sd)^2.
    sd_low = np.sqrt((1.0 - rho) * total["var_low"] + rho * total["sd_low"] ** 2)
    sd_high = np.sqrt((1.0 - rho) * total["var_high"] + rho * total["sd_high"] ** 2)
    total["supply_kg_p10"] = np.maximum(total["supply_kg_p50"] - Z90 * sd_low, 0.0)
    total["supply_kg_p90"] = total["supply_kg_p50"] + Z90 * sd_high
    return total.reset_index().loc[:, list(SUPPLY_COLUMNS)]


def _daily_shares(p10: date, p50: date, p90: date) -> tuple[list[date], np.ndarray]:
    """Days and the share of a field's harvest on each: triangular with mode P50 and its
    10th/90th percentiles at P10/P90 (exact when symmetric; each side scaled alike)."""
    # In a triangular density the 10th percentile of the lower half-width h sits
    # (1 - sqrt(0.2)) h from the mode, and likewise above.
    stretch = 1.0 / (1.0 - np.sqrt(0.2))
    low = -(p50 - p10).days * stretch
    high = (p90 - p50).days * stretch
    first, last = int(np.floor(low - 0.5)), int(np.ceil(high + 0.5))
    offsets = np.arange(first, last + 1)
    cdf = _triangular_cdf(np.append(offsets - 0.5, last + 0.5), low, 0.0, high)
    shares = np.diff(cdf)
    keep = shares > 0
    if not keep.any():  # a window of one day
        return [p50], np.ones(1)
    days = [p50 + timedelta(days=int(k)) for k in offsets[keep]]
    return days, shares[keep] / shares[keep].sum()


def _empty_supply() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in SUPPLY_COLUMNS})
    return frame.astype({"crop": "object", "region": "object", "week": "object"})
