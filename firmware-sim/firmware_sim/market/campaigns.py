"""Campaign history: what each group-buying campaign actually sold.

A campaign is judged against its counterfactual: the same demand series
(same seed, so the same noise, festivals and shocks) with that one campaign
left out. What it sold is capped by the supply that was there to sell, when
that is known. The records are plain frozen dataclasses so the registry can
store them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from agrimatch.scenario import CampaignPlan, DemandProfile
from firmware_sim.market.demand import HANGOVER_DAYS, crop_market, daily_demand


@dataclass(frozen=True, slots=True)
class CampaignOutcome:
    """The result of one campaign (volumes in kg over the campaign's days, inclusive).

    ``demand_kg`` is what shoppers ordered; ``volume_kg`` what was sold, which is
    less when ``supply_kg`` ran out (``sold_out``). ``baseline_kg`` is what the
    same days would have sold without the campaign, so ``uplift_achieved`` =
    ``volume_kg / baseline_kg`` compares with the planned ``uplift``.
    ``hangover_kg`` is the demand lost in the dip after the campaign (baseline
    minus actual over :data:`~firmware_sim.market.demand.HANGOVER_DAYS`).
    """

    platform: str
    crop: str
    region: str
    start: date
    end: date
    uplift_planned: float
    demand_kg: float
    volume_kg: float
    baseline_kg: float
    uplift_achieved: float
    peak_day: date
    peak_day_kg: float
    orders: int
    revenue_cny: float
    hangover_kg: float
    supply_kg: float | None
    sold_out: bool


def evaluate_campaign(
    plan: CampaignPlan,
    profile: DemandProfile,
    *,
    seed: int,
    campaigns: Sequence[CampaignPlan] = (),
    supply_kg: float | None = None,
    trend_origin: date | None = None,
) -> CampaignOutcome:
    """The outcome of ``plan`` on the demand of ``profile``.

    ``campaigns`` are the other campaigns of the history: they stay in both the
    actual and the counterfactual series, so an overlapping campaign is not
    credited to this one. ``supply_kg`` is the quantity available to sell over
    the campaign (None: unlimited); days sell in order until it runs out.
    ``seed`` and ``trend_origin`` as in :func:`~firmware_sim.market.demand.daily_demand`.
    """
    if (plan.platform, plan.crop, plan.region) != (profile.platform, profile.crop, profile.region):
        raise ValueError(
            f"campaign {plan.platform}/{plan.crop}/{plan.region} does not match the demand "
            f"profile {profile.platform}/{profile.crop}/{profile.region}"
        )
    if supply_kg is not None and supply_kg < 0:
        raise ValueError(f"supply_kg must be >= 0, got {supply_kg}")
    others = [c for c in campaigns if c != plan]
    last_day = plan.end + timedelta(days=HANGOVER_DAYS)
    origin = trend_origin or date(plan.start.year, 1, 1)
    actual = daily_demand(
        profile, plan.start, last_day, seed=seed, campaigns=[*others, plan], trend_origin=origin
    )
    baseline = daily_demand(
        profile, plan.start, last_day, seed=seed, campaigns=others, trend_origin=origin
    )
    n_running = (plan.end - plan.start).days + 1
    demanded = actual.quantity_kg[:n_running]
    sold = demanded if supply_kg is None else _sell_in_order(demanded, supply_kg)
    volume_kg = float(sold.sum())
    baseline_kg = float(baseline.quantity_kg[:n_running].sum())
    peak = int(np.argmax(sold))
    return CampaignOutcome(
        platform=plan.platform,
        crop=plan.crop,
        region=plan.region,
        start=plan.start,
        end=plan.end,
        uplift_planned=plan.uplift,
        demand_kg=float(demanded.sum()),
        volume_kg=volume_kg,
        baseline_kg=baseline_kg,
        uplift_achieved=volume_kg / baseline_kg,
        peak_day=plan.start + timedelta(days=peak),
        peak_day_kg=float(sold[peak]),
        orders=round(volume_kg / crop_market(plan.crop).order_kg),
        revenue_cny=float((sold * actual.price_cny_per_kg[:n_running]).sum()),
        hangover_kg=float(
            (baseline.quantity_kg[n_running:] - actual.quantity_kg[n_running:]).sum()
        ),
        supply_kg=supply_kg,
        sold_out=supply_kg is not None and volume_kg < float(demanded.sum()),
    )


def evaluate_campaigns(
    campaigns: Sequence[CampaignPlan],
    profiles: Sequence[DemandProfile],
    *,
    seed: int,
    supply_kg: Mapping[CampaignPlan, float] | None = None,
    trend_origin: date | None = None,
) -> list[CampaignOutcome]:
    """Outcomes of every campaign (a scenario's history), in the order given.

    Each campaign is judged on the demand profile of its platform, crop and
    region (``ValueError`` when there is none), with the other campaigns of
    the same series kept in both the actual and the counterfactual demand.
    ``supply_kg`` maps a campaign to the quantity it had to sell.
    """
    by_series = {(p.platform, p.crop, p.region): p for p in profiles}
    outcomes = []
    for plan in campaigns:
        profile = by_series.get((plan.platform, plan.crop, plan.region))
        if profile is None:
            raise ValueError(
                f"campaign {plan.platform}/{plan.crop}/{plan.region} from {plan.start} "
                "has no demand profile to be judged against"
            )
        outcomes.append(
            evaluate_campaign(
                plan,
                profile,
                seed=seed,
                campaigns=campaigns,
                supply_kg=(supply_kg or {}).get(plan),
                trend_origin=trend_origin,
            )
        )
    return outcomes


def _sell_in_order(demand_kg: NDArray[np.float64], supply_kg: float) -> NDArray[np.float64]:
    """Daily sales when ``supply_kg`` is sold first come, first served."""
    sold_before = np.concatenate(([0.0], np.cumsum(demand_kg)[:-1]))
    remaining = np.clip(supply_kg - sold_before, 0.0, None)
    return np.minimum(demand_kg, remaining)
