"""The planting optimiser's inputs, from the chain's forecasts and the platforms' demand. Pure.

:func:`~forecasting.planting.recommend_planting` needs this season's areas
(:func:`current_plan`) and, per crop and region, yields, a cost per hectare
and an inverse demand curve (:func:`crop_economics`):

* **yields**: the area-weighted mean of the fields' forecast P10 and P50, so a
  big field counts for what it brings to market;
* **cost**: the catalog's ``production_cost_cny_per_ha`` (total cost, NDRC
  basis, so margins compare across crops);
* **price**: what a kilogram sold for on the platforms over the last
  :data:`PRICE_WINDOW_WEEKS` weeks (quantity-weighted, so a week of big
  volumes counts for more than a trickle), else the catalog's reference price;
  carried as ``observed_price_cny_per_kg`` so a plan shows it beside the
  model's price;
* **orchards**: the catalog's establishment and removal costs and years to
  bearing (:class:`~agrimatch.agronomy.crops.OrchardCosts`);
* **reference quantity**: what the platforms would take in a year at that
  price: the forecast mean weekly demand (P50, all platforms) times
  :data:`WEEKS_PER_YEAR`. A crop the platforms do not sell (maize, say) has
  no demand forecast; then the market is taken to absorb the region's
  current expected production (area × P50) at that price: the curve is
  anchored on today, and only moving away from today changes the price;
* **curve**: :func:`~forecasting.planting.linear_price_curve` through the
  reference point with the elasticity :data:`DEFAULT_PRICE_ELASTICITY`, or a
  per-crop override; a crop on the production fallback gets
  :data:`PRICE_TAKER_ELASTICITY` instead (see below);
* **anchored on the observed price**: that curve is then scaled in price so
  that today's expected production fetches the price (the observed one when
  the platforms sold the crop): the model's price of today's plan is the
  price the platforms see, and the demand forecast still says how the price
  moves as the region's quantity moves (the curve's slope: a region growing
  more than the platforms take sits where demand is inelastic, one growing
  less where it is elastic). Scaling a linear curve through ``(reference,
  p)`` to pass through ``(production, p)`` is the same as taking the line
  through ``(production, p)`` with the scaled curve's elasticity there,
  ``(ε + x - 1) / x`` for ``x = production / reference``; where the region
  grows so much more than the platforms take that this would approach zero
  (a vertical curve: ``x`` near ``1 - ε``, or beyond, where the unscaled
  curve gives nothing), it is held at :data:`MIN_ANCHOR_ELASTICITY`.

A linear inverse demand with elasticity ε at the reference has marginal
revenue ``price · (1 + 1/ε)`` there: zero at ε = -1. So at the default, a
crop producing its reference quantity earns nothing from another hectare but
still pays its cost, and only a crop producing well below its reference
grows. A crop on the production fallback sits exactly at its reference, so
at the default the optimiser cuts it as far as the change limit and staple
rules allow. That is why a crop the platforms do not sell is priced as a
price taker: it goes to a national market (maize to feed mills and the state
reserve), where one county's harvest barely moves the price, so its
elasticity is :data:`PRICE_TAKER_ELASTICITY` (at -10 the marginal revenue is
90 % of the price) unless ``elasticity_by_crop`` says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import pandas as pd

from agrimatch.agronomy import CropSpec
from forecasting.planting import KG_PER_T, CropEconomics, linear_price_curve

# A prior, not a fit: short-run own-price elasticities of vegetables and fruit in
# China are estimated at about -0.5 to -1.2 in household demand-system studies;
# -1.0 sits in that range and makes a crop's revenue flat at its reference quantity.
DEFAULT_PRICE_ELASTICITY = -1.0
# A county's share of a national grain market is tiny: the price barely moves with it.
PRICE_TAKER_ELASTICITY = -10.0
# The least elastic the curve is taken to be at today's production: the low end of the
# range of estimates above (a region's demand is never perfectly inelastic).
MIN_ANCHOR_ELASTICITY = -0.5
WEEKS_PER_YEAR = 52.18  # 365.25 / 7
PRICE_WINDOW_WEEKS = 52  # a full year, so the price is not one season's high or low
YIELD_QUANTILE_COLUMNS = ("yield_t_ha_p10", "yield_t_ha_p50", "yield_t_ha_p90")

_CURRENT_COLUMNS = ("farm", "region", "crop", "area_ha")
_FORECAST_COLUMNS = (*_CURRENT_COLUMNS, "yield_t_ha_p10", "yield_t_ha_p50")
_DEMAND_COLUMNS = ("crop", "region", "week", "demand_kg_p50")
_OBSERVED_COLUMNS = ("crop", "region", "week", "quantity_kg", "price_cny_per_kg")


def current_plan(forecasts: pd.DataFrame) -> pd.DataFrame:
    """This season's area per farm, region and crop: the ``current`` of ``recommend_planting``.

    ``forecasts`` has one row per field-season (at least ``farm, region, crop,
    area_ha``); the fields of a farm and crop are summed, each field once (with a
    ``field`` column, a field forecast for two seasons of a crop counts its land once).
    Next season's plan covers every crop of the rotation whatever the date, so long as
    ``forecasts`` carries each field's season in the ground or next to come (harvested
    crops included: the chain forecasts a field's next season once its crop is in).
    """
    _require(forecasts, _CURRENT_COLUMNS, "forecasts")
    if forecasts.empty:
        return pd.DataFrame(columns=list(_CURRENT_COLUMNS))
    _check_areas(forecasts)
    forecasts = _one_season_per_field(forecasts)
    frame = forecasts[list(_CURRENT_COLUMNS)].astype(
        {"farm": str, "region": str, "crop": str, "area_ha": float}
    )
    summed = frame.groupby(["farm", "region", "crop"], as_index=False, sort=True)["area_ha"].sum()
    return summed[list(_CURRENT_COLUMNS)].reset_index(drop=True)


def past_yield_quantiles(history: pd.DataFrame) -> pd.DataFrame:
    """P10/P50/P90 of each crop's recorded yields per region (``crop, region`` and
    :data:`YIELD_QUANTILE_COLUMNS`): the climatology of a season not sown yet."""
    past = history.groupby(["crop", "region"])["yield_t_ha"]
    quantiles = {f"yield_t_ha_p{round(q * 100)}": past.quantile(q) for q in (0.1, 0.5, 0.9)}
    return pd.DataFrame(quantiles).reset_index()


def crop_economics(
    forecasts: pd.DataFrame,
    demand_forecast: pd.DataFrame,
    observed_weekly: pd.DataFrame,
    crops: Mapping[str, CropSpec],
    *,
    elasticity: float = DEFAULT_PRICE_ELASTICITY,
    elasticity_by_crop: Mapping[str, float] | None = None,
    price_taker_elasticity: float = PRICE_TAKER_ELASTICITY,
) -> list[CropEconomics]:
    """One :class:`CropEconomics` per (crop, region) in ``forecasts``, sorted by crop and region.

    ``forecasts``: per-field rows with ``farm, region, crop, area_ha,
    yield_t_ha_p10, yield_t_ha_p50``. ``demand_forecast``: weekly demand per
    platform (``DEMAND_COLUMNS``; ``crop, region, week, demand_kg_p50`` are
    read). ``observed_weekly``: observed weekly platform sales
    (``demand_data.weekly``; ``crop, region, week, quantity_kg,
    price_cny_per_kg`` are read); its last :data:`PRICE_WINDOW_WEEKS` weeks
    are counted back from its latest week. ``crops``: the catalog. See the
    module docstring for how each number is made.

    Raises ``ValueError`` naming the frame and missing columns, a crop not in
    the catalog, a non-negative elasticity, or fields whose areas or yields
    cannot give a yield (negative or missing area, no area at all, P50 <= 0).
    """
    _require(forecasts, _FORECAST_COLUMNS, "forecasts")
    _require(demand_forecast, _DEMAND_COLUMNS, "demand_forecast")
    _require(observed_weekly, _OBSERVED_COLUMNS, "observed_weekly")
    overrides = dict(elasticity_by_crop or {})
    named = [("default", elasticity), ("price taker", price_taker_elasticity)]
    for name, value in [*named, *overrides.items()]:
        if not value < 0:  # also refuses NaN
            raise ValueError(f"price elasticity ({name}) must be negative, got {value}")
    if forecasts.empty:
        return []
    _check_areas(forecasts)
    forecasts = _one_season_per_field(forecasts)
    unknown = sorted(set(map(str, forecasts["crop"])) - set(crops))
    if unknown:
        raise ValueError(f"crops not in the catalog: {unknown}")

    annual_demand_t = _annual_demand_t(demand_forecast)
    prices = _recent_prices(observed_weekly)
    frame = forecasts.astype({"region": str, "crop": str})
    economics = []
    for (crop, region), fields in frame.groupby(["crop", "region"], sort=True):
        crop, region = str(crop), str(region)
        p10 = _weighted_yield(fields, "yield_t_ha_p10", crop, region)
        p50 = _weighted_yield(fields, "yield_t_ha_p50", crop, region)
        if not p50 > 0:
            raise ValueError(f"{crop}/{region}: the fields' yield P50 is {p50}, need > 0")
        # Quantile models can cross on a field; the optimiser needs P10 <= P50.
        p10 = min(max(p10, 0.0), p50)
        spec = crops[crop]
        pair = (crop, region)
        observed_price = prices.get(pair)
        price = spec.reference_price_cny_per_kg if observed_price is None else observed_price
        production_t = float(fields["area_ha"].sum()) * p50
        reference_t = annual_demand_t.get(pair, production_t)
        sold = pair in annual_demand_t
        slope = overrides.get(crop, elasticity if sold else price_taker_elasticity)
        anchored = _elasticity_at(production_t / reference_t, slope)
        orchard = spec.orchard
        economics.append(
            CropEconomics(
                crop=crop,
                region=region,
                yield_t_ha_p10=p10,
                yield_t_ha_p50=p50,
                cost_cny_per_ha=spec.production_cost_cny_per_ha,
                price_curve=linear_price_curve(production_t, price, anchored),
                perennial=spec.perennial and orchard is not None,
                establishment_cost_cny_per_ha=0.0
                if orchard is None
                else orchard.establishment_cost_cny_per_ha,
                removal_cost_cny_per_ha=0.0 if orchard is None else orchard.removal_cost_cny_per_ha,
                years_to_bearing=0 if orchard is None else orchard.years_to_bearing,
                observed_price_cny_per_kg=observed_price,
            )
        )
    return economics


def _elasticity_at(x: float, elasticity: float) -> float:
    """The elasticity, at ``x`` times its reference quantity, of a linear curve with
    ``elasticity`` at the reference, held at or below :data:`MIN_ANCHOR_ELASTICITY`."""
    # P(Q) = p(1 + (Q/Q0 - 1)/ε) has (dQ/dP)(P/Q) = (ε + x - 1)/x at Q = x·Q0.
    at = (elasticity + x - 1.0) / x
    return min(at, MIN_ANCHOR_ELASTICITY) if at < 0 else MIN_ANCHOR_ELASTICITY


def _one_season_per_field(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The first row of each farm, field and crop: a field's land counts once."""
    if "field" not in forecasts.columns:
        return forecasts
    return forecasts.drop_duplicates(["farm", "field", "crop"], keep="first")


def _require(frame: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    # An empty frame with no columns means "no data" (what an empty query gives).
    if missing and not (frame.empty and len(frame.columns) == 0):
        raise ValueError(f"{name} lacks columns {missing}")


def _check_areas(forecasts: pd.DataFrame) -> None:
    area = pd.to_numeric(forecasts["area_ha"], errors="coerce")
    bad = forecasts.loc[~(area >= 0), ["crop", "region"]]  # NaN fails too
    if len(bad):
        first = bad.iloc[0]
        raise ValueError(
            f"forecasts: {len(bad)} rows with a missing or negative area_ha "
            f"(first: {first['crop']}/{first['region']})"
        )


def _weighted_yield(fields: pd.DataFrame, column: str, crop: str, region: str) -> float:
    area = fields["area_ha"].to_numpy(dtype=float)
    values = pd.to_numeric(fields[column], errors="coerce").to_numpy(dtype=float)
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{crop}/{region}: {column} is missing for some fields")
    total = float(area.sum())
    if total <= 0:
        raise ValueError(f"{crop}/{region}: the fields have no area to weight yields by")
    return float((area * values).sum() / total)


def _annual_demand_t(demand_forecast: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(crop, region) -> tonnes a year: mean weekly P50 (platforms summed) × weeks a year.

    A mean over a horizon shorter than a year carries that horizon's
    seasonality; the demand model goes to 52 weeks when the chain can.
    Pairs with no positive demand are left out (they take the production
    fallback: a zero forecast is no curve to anchor on).
    """
    if demand_forecast.empty:
        return {}
    frame = demand_forecast.astype({"crop": str, "region": str})
    weekly = frame.groupby(["crop", "region", "week"])["demand_kg_p50"].sum()
    mean_kg = weekly.groupby(level=["crop", "region"]).mean()
    annual = {
        (str(crop), str(region)): float(kg) * WEEKS_PER_YEAR / KG_PER_T
        for (crop, region), kg in mean_kg.items()
    }
    return {pair: t for pair, t in annual.items() if t > 0}


def _recent_prices(observed_weekly: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(crop, region) -> quantity-weighted mean price (CNY/kg) over the last weeks observed."""
    if observed_weekly.empty:
        return {}
    weeks = pd.to_datetime(observed_weekly["week"])
    recent = weeks > weeks.max() - pd.Timedelta(weeks=PRICE_WINDOW_WEEKS)
    quantity = pd.to_numeric(observed_weekly["quantity_kg"], errors="coerce")
    price = pd.to_numeric(observed_weekly["price_cny_per_kg"], errors="coerce")
    # Unpriced weeks or weeks with no sales say nothing about the price.
    usable = recent & (quantity > 0) & (price > 0)
    work = pd.DataFrame(
        {
            "crop": observed_weekly["crop"].astype(str),
            "region": observed_weekly["region"].astype(str),
            "kg": quantity.where(usable, 0.0),
            "cny": (quantity * price).where(usable, 0.0),
        }
    )
    sums = work.groupby(["crop", "region"])[["kg", "cny"]].sum()
    sums = sums[sums["kg"] > 0]
    return {
        (str(crop), str(region)): float(cny / kg)
        for (crop, region), kg, cny in zip(sums.index, sums["kg"], sums["cny"], strict=True)
    }
