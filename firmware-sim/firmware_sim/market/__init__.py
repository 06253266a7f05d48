"""The market side of the simulated world: what platforms' shoppers buy, day by day.

* :func:`festival_multiplier` (:mod:`.calendar`): Spring Festival, Mid-Autumn,
  618 and Double 11 peaks for a date range;
* :func:`daily_demand` and :class:`DemandSeries` (:mod:`.demand`): pure,
  deterministic daily demand for a :class:`~agrimatch.scenario.DemandProfile`
  with seasonality, trend, festivals, price response, campaigns and shocks;
* :func:`evaluate_campaign`, :func:`evaluate_campaigns` and
  :class:`CampaignOutcome` (:mod:`.campaigns`): campaign history;
* :func:`demand_points` and :func:`write_demand` (:mod:`.to_store`): the
  series as ``demand`` points in the telemetry store.
"""

from firmware_sim.market.calendar import (
    FESTIVAL_RULES,
    FestivalRule,
    festival_dates,
    festival_multiplier,
)
from firmware_sim.market.campaigns import CampaignOutcome, evaluate_campaign, evaluate_campaigns
from firmware_sim.market.demand import (
    CROP_MARKETS,
    HANGOVER_DAYS,
    CropMarket,
    DemandSeries,
    daily_demand,
)
from firmware_sim.market.to_store import DemandRejected, day_start_ms, demand_points, write_demand

__all__ = [
    "CROP_MARKETS",
    "FESTIVAL_RULES",
    "HANGOVER_DAYS",
    "CampaignOutcome",
    "CropMarket",
    "DemandRejected",
    "DemandSeries",
    "FestivalRule",
    "daily_demand",
    "day_start_ms",
    "demand_points",
    "evaluate_campaign",
    "evaluate_campaigns",
    "festival_dates",
    "festival_multiplier",
    "write_demand",
]
