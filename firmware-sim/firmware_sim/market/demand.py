"""Daily demand for one crop from one region on one platform: a pure function.

Demand on day *d* is the product of independent effects::

    quantity_kg = base_kg_per_day
                  × seasonality(crop, d)       annual cycle, mean 1 over a year
                  × trend(d)                   (1 + trend_per_year) ** years
                  × festivals(d)               Spring Festival, Mid-Autumn, 618, 11.11
                  × (price(d) / ref) ** elasticity
                  × campaigns(d)               uplift while one runs, hangover dip after
                  × shocks(d)                  logistic ramp to a lasting multiplier
                  × noise(d)                   lognormal, mean 1

so ``base_kg_per_day`` is the everyday demand: the annual mean before
festivals, campaigns and shocks.

Randomness is keyed, not drawn from a global generator: the noise of a day is a
function of ``(seed, platform, crop, region, year)`` and the day of the year,
hashed with blake2b (``hash()`` differs between processes). The same day
therefore has the same value whatever range it is generated in, and a
counterfactual run (the same profile without a campaign) differs only by the
campaign.

Calibration (the seed paper's cases; scenarios should use these orders of
magnitude; each is checked in ``tests/test_market.py``):

* Zhongmou garlic, April 2018: 330,000 jin (165 t) sold on the campaign's
  first day. A large platform's everyday demand for one producing region's
  garlic of 7,500 kg/day (3,000 orders of 2.5 kg) at a reference price of
  6 CNY/kg, with a campaign uplift of 20, gives 162-168 t/day over a
  campaign from 10 April (seasonality 1.01 there; the price, 11% below
  reference ahead of the May harvest, adds 10%); noise (0.1) moves single
  days by about ±10%.
* Korla fragrant pears: about 500 t in under two months. 1,300 kg/day
  everyday demand and a 50-day campaign from 25 September with uplift 3
  sell about 505 t (the autumn peak of the season, Mid-Autumn and the run-up
  to 11.11 fall inside).
* Yunnan snow lotus fruit, 2018: 36 million jin (18,000 t) in the year. A
  shock (the new weight-loss use) from June 2017, ramping over 120 days to 10
  times an everyday demand of 4,200 kg/day, gives about 18,000 t over 2018.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from hashlib import blake2b
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

from agrimatch.scenario import CampaignPlan, DemandProfile, DemandShock
from firmware_sim.market.calendar import festival_multiplier

_DAYS_PER_YEAR = 365.25
# A hangover dip lasts two weeks and decays exponentially, 95% gone by the end
# (exp(-3) ≈ 0.05): shoppers who stocked up during the campaign buy less for a while.
HANGOVER_DAYS = 14
_HANGOVER_TAU_DAYS = HANGOVER_DAYS / 3
# Price flexibility: how far the price falls when supply rises (price ∝ supply^-0.5,
# so twice the usual supply sells at about 70% of the price); a simulator's choice.
PRICE_FLEXIBILITY = 0.5
# A logistic ramp is drawn on [-5, 5] and rescaled to run exactly from 0 to 1.
_LOGISTIC_HALF_WIDTH = 5.0


@dataclass(frozen=True, slots=True)
class CropMarket:
    """How a crop sells online.

    ``peak_day_of_year`` and ``concentration`` shape the annual demand cycle
    (a von Mises bump: 0 is a flat year, 1 puts the peak at about twice the
    mean); the price is lowest around ``harvest_day_of_year``, when supply is
    highest, and swings ``price_swing`` (a fraction) either side of the
    reference price. ``order_kg`` is the typical parcel of one order.
    """

    order_kg: float
    peak_day_of_year: int
    concentration: float
    harvest_day_of_year: int
    price_swing: float


# Simulator values, chosen from how these crops are sold (parcel sizes of
# typical listings, harvest months); not measured.
CROP_MARKETS: MappingProxyType[str, CropMarket] = MappingProxyType(
    {
        # Steady all year (a kitchen staple), a winter peak (Laba garlic,
        # dumplings); harvested in May, when prices fall.
        "garlic": CropMarket(2.5, 15, 0.3, 140, 0.15),
        # Fresh pears sell in autumn after the September harvest; stored pears
        # carry on through winter.
        "fragrant_pear": CropMarket(5.0, 290, 1.0, 258, 0.2),
        # Fresh jujubes in autumn, dried ones into winter.
        "jujube": CropMarket(2.5, 290, 0.8, 274, 0.15),
        # Yacon is dug in November and sold through autumn and winter.
        "snow_lotus_fruit": CropMarket(5.0, 335, 1.0, 319, 0.2),
        # Fresh sweet corn is a summer buy.
        "maize": CropMarket(3.0, 213, 0.8, 232, 0.2),
        "potato": CropMarket(5.0, 15, 0.2, 200, 0.15),
        "tomato": CropMarket(2.5, 196, 0.5, 196, 0.25),
    }
)


@dataclass(frozen=True, slots=True, eq=False)
class DemandSeries:
    """Daily demand from ``start`` on, one value per day (arrays are read-only)."""

    platform: str
    crop: str
    region: str
    start: date
    quantity_kg: NDArray[np.float64]
    orders: NDArray[np.int64]
    price_cny_per_kg: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.quantity_kg)

    @property
    def end(self) -> date:
        """The last day (inclusive)."""
        return self.start + timedelta(days=len(self) - 1)

    @property
    def days(self) -> list[date]:
        """The day of each value."""
        return [self.start + timedelta(days=i) for i in range(len(self))]

    def index(self, day: date) -> int:
        """Position of ``day`` in the arrays; ``IndexError`` when outside the series."""
        position = (day - self.start).days
        if not 0 <= position < len(self):
            raise IndexError(f"{day} is outside {self.start}..{self.end}")
        return position


def daily_demand(
    profile: DemandProfile,
    start: date,
    end: date,
    *,
    seed: int,
    campaigns: Sequence[CampaignPlan] = (),
    price_cny_per_kg: ArrayLike | None = None,
    supply_pressure: ArrayLike | None = None,
    trend_origin: date | None = None,
) -> DemandSeries:
    """Demand of ``profile`` for each day from ``start`` to ``end`` inclusive.

    ``campaigns`` may hold any campaigns (a scenario's whole list): only those of
    the profile's platform, crop and region act. The price is, in order of
    preference, ``price_cny_per_kg`` (one value per day), or the crop's seasonal
    price moved by ``supply_pressure`` (available supply relative to normal, one
    value per day: 2.0 = twice the usual supply, a glut, multiplies the price by
    ``2 ** -PRICE_FLEXIBILITY``), or the seasonal price alone. The trend counts
    years from ``trend_origin`` (default: 1 January of ``start``'s year); pass
    the scenario's first day so that any window of it agrees with the whole.
    Deterministic for ``(seed, platform, crop, region)``.
    """
    market = crop_market(profile.crop)
    n_days = _n_days(start, end)
    day_of_year, years = _calendar_parts(start, n_days)

    origin = trend_origin or date(start.year, 1, 1)
    years_since_origin = (np.arange(n_days) + (start - origin).days) / _DAYS_PER_YEAR
    trend = (1.0 + profile.trend_per_year) ** years_since_origin

    price = _price_path(profile, market, day_of_year, n_days, price_cny_per_kg, supply_pressure)
    price_response = (price / profile.price_cny_per_kg) ** profile.price_elasticity

    quantity_kg = (
        profile.base_kg_per_day
        * seasonality(market, day_of_year)
        * trend
        * festival_multiplier(start, end, profile.festival_sensitivity)
        * price_response
        * campaign_multiplier(profile, campaigns, start, end)
        * shock_multiplier(profile.shocks, start, end)
        * _lognormal_noise(profile, seed, day_of_year, years)
    )
    orders = np.rint(quantity_kg / market.order_kg).astype(np.int64)
    for array in (quantity_kg, orders, price):
        array.setflags(write=False)
    return DemandSeries(
        profile.platform, profile.crop, profile.region, start, quantity_kg, orders, price
    )


def crop_market(crop: str) -> CropMarket:
    """The market shape of ``crop``; ``ValueError`` for a crop without one."""
    try:
        return CROP_MARKETS[crop]
    except KeyError:
        raise ValueError(
            f"no market shape for crop {crop!r} (known: {', '.join(sorted(CROP_MARKETS))})"
        ) from None


def seasonality(market: CropMarket, day_of_year: NDArray[np.int64]) -> NDArray[np.float64]:
    """Annual demand cycle for 0-based days of the year; its mean over a year is 1."""
    angle = 2 * np.pi * (day_of_year - market.peak_day_of_year) / _DAYS_PER_YEAR
    # Dividing by I0(κ), the von Mises normaliser, keeps the annual mean at 1 so
    # base_kg_per_day stays the everyday demand whatever the crop's shape.
    return np.exp(market.concentration * np.cos(angle)) / np.i0(market.concentration)


def seasonal_price(
    market: CropMarket, reference_cny_per_kg: float, day_of_year: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Price without a glut: lowest at harvest, highest half a year later."""
    angle = 2 * np.pi * (day_of_year - market.harvest_day_of_year) / _DAYS_PER_YEAR
    return reference_cny_per_kg * (1.0 - market.price_swing * np.cos(angle))


def campaign_multiplier(
    profile: DemandProfile, campaigns: Sequence[CampaignPlan], start: date, end: date
) -> NDArray[np.float64]:
    """Per-day multiplier of the campaigns of ``profile``'s platform, crop and region.

    A campaign multiplies demand by ``uplift`` from its start to its end
    (inclusive), then by ``1 - hangover`` on the next day, the dip fading
    exponentially over :data:`HANGOVER_DAYS`. Overlapping campaigns multiply.
    """
    offsets = np.arange(_n_days(start, end))
    multiplier = np.ones(len(offsets))
    for campaign in campaigns:
        if (campaign.platform, campaign.crop, campaign.region) != (
            profile.platform,
            profile.crop,
            profile.region,
        ):
            continue
        first = (campaign.start - start).days
        last = (campaign.end - start).days
        running = (offsets >= first) & (offsets <= last)
        multiplier[running] *= campaign.uplift
        after = offsets - last - 1
        hangover = (after >= 0) & (after < HANGOVER_DAYS)
        multiplier[hangover] *= 1.0 - campaign.hangover * np.exp(
            -after[hangover] / _HANGOVER_TAU_DAYS
        )
    return multiplier


def shock_multiplier(shocks: Sequence[DemandShock], start: date, end: date) -> NDArray[np.float64]:
    """Per-day multiplier of lasting demand shocks.

    Each shock ramps along a logistic curve from 1 on its ``start`` to its
    ``multiplier`` ``ramp_days`` later, and stays there (a step when
    ``ramp_days`` is 0). A multiplier above 1 is a surge (a new use), below 1
    a lasting fall (a food-safety scare, scenario ``jujube-scare``). Several
    shocks multiply (a scare and a later partial recovery, say).
    """
    offsets = np.arange(_n_days(start, end))
    multiplier = np.ones(len(offsets))
    low = _logistic(-_LOGISTIC_HALF_WIDTH)
    high = _logistic(_LOGISTIC_HALF_WIDTH)
    for shock in shocks:
        since = offsets - (shock.start - start).days
        if shock.ramp_days == 0:
            progress = (since >= 0).astype(float)
        else:
            x = np.clip(since / shock.ramp_days, 0.0, 1.0)
            # Rescaled so the ramp is exactly 0 on the start day and 1 at its end.
            raw = _logistic(_LOGISTIC_HALF_WIDTH * (2 * x - 1))
            progress = np.where(since < 0, 0.0, (raw - low) / (high - low))
        multiplier *= 1.0 + (shock.multiplier - 1.0) * progress
    return multiplier


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts``, the same in every process (unlike ``hash()``)."""
    text = "|".join(str(part) for part in parts)
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")


def _price_path(
    profile: DemandProfile,
    market: CropMarket,
    day_of_year: NDArray[np.int64],
    n_days: int,
    price_cny_per_kg: ArrayLike | None,
    supply_pressure: ArrayLike | None,
) -> NDArray[np.float64]:
    if price_cny_per_kg is not None and supply_pressure is not None:
        raise ValueError("give a price path or a supply pressure, not both")
    if price_cny_per_kg is not None:
        return _daily_array("price_cny_per_kg", price_cny_per_kg, n_days)
    price = seasonal_price(market, profile.price_cny_per_kg, day_of_year)
    if supply_pressure is not None:
        pressure = _daily_array("supply_pressure", supply_pressure, n_days)
        price = price * pressure**-PRICE_FLEXIBILITY
    return price


def _daily_array(name: str, values: ArrayLike, n_days: int) -> NDArray[np.float64]:
    array = np.array(values, dtype=np.float64)  # a copy: the caller's array stays theirs
    if array.shape != (n_days,):
        raise ValueError(f"{name} needs one value per day ({n_days}), got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{name} must be finite and positive")
    return array


def _lognormal_noise(
    profile: DemandProfile,
    seed: int,
    day_of_year: NDArray[np.int64],
    years: NDArray[np.int64],
) -> NDArray[np.float64]:
    sigma = profile.noise
    z = np.empty(len(day_of_year))
    # One generator per calendar year, keyed by the series and the year, so a
    # day's draw does not depend on where the requested range starts.
    for year in np.unique(years):
        in_year = years == year
        key = stable_seed(
            seed, "demand-noise", profile.platform, profile.crop, profile.region, int(year)
        )
        draws = np.random.default_rng(key).standard_normal(366)
        z[in_year] = draws[day_of_year[in_year]]
    # exp(σz - σ²/2) has mean 1: noise scatters demand without biasing it.
    return np.exp(sigma * z - sigma**2 / 2)


def _calendar_parts(start: date, n_days: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """0-based day of the year and the calendar year of each day."""
    days = np.datetime64(start, "D") + np.arange(n_days)
    year_starts = days.astype("datetime64[Y]")
    day_of_year = (days - year_starts.astype("datetime64[D]")).astype(np.int64)
    years = year_starts.astype(np.int64) + 1970
    return day_of_year, years


def _n_days(start: date, end: date) -> int:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return (end - start).days + 1


def _logistic(x: float | NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64))))
