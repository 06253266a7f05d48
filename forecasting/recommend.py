"""From field forecasts to balance and recommendations: the one way there. Pure.

The scheduled forecast, a what-if and a backtest all end here:
:func:`outlook` takes per-field forecasts (yield quantiles and harvest
windows, as :func:`forecasting.chain.field_forecasts` gives them) and a
:class:`Market` (the demand forecast, observed prices, platforms and what
campaigns did before), and returns the weekly supply, the balance, the
campaign recommendations and next season's planting plan. Because it is one
function, a what-if that changes nothing gives exactly the recommendations
the forecast job saved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from agrimatch.agronomy import CROPS, CropSpec
from forecasting.balance import balance
from forecasting.campaign_uplift import UpliftTable
from forecasting.campaigns import (
    CampaignRecommendation,
    CampaignSettings,
    Festival,
    PlatformLike,
    recommend_campaigns,
)
from forecasting.economics import crop_economics, current_plan
from forecasting.harvest import weekly_supply
from forecasting.planting import (
    CropEconomics,
    PlantingConstraints,
    PlantingInfeasible,
    PlantingPlan,
    Risk,
    recommend_planting,
)

log = logging.getLogger(__name__)

# Risk-aware: the mean margin blended with the mean of the worst tenth of yield years.
DEFAULT_PLANTING_RISK: Risk = ("cvar", 0.1, 0.3)


@dataclass(frozen=True, slots=True)
class PlantingSettings:
    """How next season's areas are chosen: the optimiser's constraints and risk measure."""

    constraints: PlantingConstraints = field(default_factory=PlantingConstraints)
    risk: Risk = DEFAULT_PLANTING_RISK


@dataclass(frozen=True, slots=True, eq=False)
class Market:
    """Everything recommendations need besides the fields' forecasts.

    ``demand``: the weekly demand forecast per platform (``DEMAND_COLUMNS``);
    its crops, regions and weeks are what the balance covers. ``observed_weekly``:
    the platforms' observed weekly sales (``forecasting.demand_data.WEEKLY_DEMAND_COLUMNS``),
    for the prices planting is priced at. ``planting`` None: no planting plan.
    ``economics``, when given, is used as it is instead of being derived from
    the forecasts and the demand (scenario studies with fixed prices).
    """

    as_of: date
    demand: pd.DataFrame
    observed_weekly: pd.DataFrame
    platforms: Sequence[PlatformLike]
    uplifts: UpliftTable
    crops: Mapping[str, CropSpec] = field(default_factory=lambda: CROPS)
    planting: PlantingSettings | None = field(default_factory=PlantingSettings)
    economics: Sequence[CropEconomics] | None = None
    festivals: Sequence[Festival] | None = None
    campaign_settings: CampaignSettings | None = None
    seed: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Outlook:
    """Supply, balance and recommendations for one set of field forecasts.

    ``supply`` is every crop and region the fields bring to market, week by
    week; ``balance`` only those the platforms sell, over the demand's weeks.
    ``planting`` is None when no plan was asked for or none was feasible
    (``planting_error`` says why).
    """

    forecasts: pd.DataFrame
    supply: pd.DataFrame
    balance: pd.DataFrame
    campaigns: list[CampaignRecommendation]
    planting: PlantingPlan | None
    planting_error: str | None = None


def outlook(forecasts: pd.DataFrame, market: Market) -> Outlook:
    """Weekly supply, balance, campaigns and planting plan of ``forecasts`` in ``market``.

    ``forecasts`` has one row per field-season with ``FIELD_SEASON_COLUMNS``,
    the yield quantiles and the harvest window (``SUPPLY_INPUT_COLUMNS``).
    """
    supply = weekly_supply(forecasts, loss_weeks=0.0)
    balanced = balance(
        sold_supply(supply, market.demand), market.demand, crops=market.crops, seed=market.seed
    )
    campaigns = recommend_campaigns(
        balanced,
        market.platforms,
        market.uplifts,
        market.crops,
        market.as_of,
        market.festivals,
        demand=market.demand,
        settings=market.campaign_settings,
    )
    planting, planting_error = _plan_planting(forecasts, market)
    return Outlook(forecasts, supply, balanced, campaigns, planting, planting_error)


def sold_supply(supply: pd.DataFrame, demand: pd.DataFrame) -> pd.DataFrame:
    """``supply`` kept to the crops, regions and weeks ``demand`` covers.

    Supply and demand meet per crop and region; the horizon is the demand's
    (a harvest beyond it has no demand to meet yet, and would read as a glut).
    """
    if demand.empty or supply.empty:
        return supply.iloc[0:0]
    weeks = [pd.Timestamp(w).date() for w in demand["week"]]
    first, last = min(weeks), max(weeks)
    sold = set(map(tuple, demand[["crop", "region"]].astype(str).to_numpy()))
    keep = [
        (str(c), str(r)) in sold and first <= pd.Timestamp(w).date() <= last
        for c, r, w in zip(supply["crop"], supply["region"], supply["week"], strict=True)
    ]
    return supply[keep].reset_index(drop=True)


def _plan_planting(
    forecasts: pd.DataFrame, market: Market
) -> tuple[PlantingPlan | None, str | None]:
    """Next season's areas from this season's fields, yields and demand; an error, not a crash."""
    if market.planting is None:
        return None, None
    economics = market.economics
    if economics is None:
        economics = crop_economics(forecasts, market.demand, market.observed_weekly, market.crops)
    try:
        plan = recommend_planting(
            current_plan(forecasts),
            economics,
            market.planting.constraints,
            market.planting.risk,
            seed=market.seed,
        )
    except PlantingInfeasible as exc:  # the forecasts stand; the plan says why it is missing
        log.warning("no planting plan: %s", exc)
        return None, str(exc)
    return plan, None
