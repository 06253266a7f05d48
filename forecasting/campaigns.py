"""When to run a group-buying campaign so a projected surplus sells before it spoils. Pure.

**The surplus at risk.** For each crop and region the balance's median path
(``supply_kg_p50`` against ``demand_kg_p50``) is run through the store model
of :func:`forecasting.balance.carry_stock`: harvests are stored, sold oldest
first, shrink by the crop's weekly post-harvest loss and spoil at the end of
their shelf life. A *surplus episode* is a run of weeks with produce in store
in which some of it spoils; its value at risk is the spoiling kilograms at
the crop's price (the catalog's reference price unless one is given). The
episode's stock exists from its first week; its last lot can be sold until
the Sunday of the week it spoils, the campaign deadline.

**A campaign's effect.** A campaign on a platform multiplies that platform's
demand by the platform's uplift (from :mod:`forecasting.campaign_uplift`)
for the days it runs (weeks count the days they share with the window), then
takes back ``hangover`` of the platform's demand, fading over two weeks
(shoppers who stocked up buy less), as the market simulator has it. Its worth
is what it saves, simulated: the produce that no longer spoils or shrinks
(``expected_absorbed_kg``, at the crop's price) plus the storage it no longer
needs (:attr:`CampaignSettings.storage_cost_cny_per_kg_week`). The storage
term is also why, between two windows that clear the same kilograms, the
earlier one wins: stock cleared at harvest is not stored for months.

**Choosing windows** (greedy, per episode, in time order). Candidates are, per
platform, windows of :attr:`CampaignSettings.lengths_days` that start no
earlier than ``as_of`` plus the platform's ``campaign_lead_days`` and the
episode's first week, and end by the deadline; starts are the earliest
allowed day, every Monday, and the days that align a window with a festival's
buying period or end it on the festival day. All candidates are simulated at
once; the best is kept and the next is chosen with it in place, until the
spoilage is cleared, the next window would absorb too little (under a
tonne, or 1 % of the spoiling stock, or for a glut beyond any window a
tenth of what the first absorbs), or
:attr:`CampaignSettings.max_campaigns_per_surplus` is reached. A platform runs
one campaign at a time and waits out its hangover before the next, so large
surpluses split across platforms and windows. The demand forecast already
carries festival peaks (the demand model's calendar features), so a festival
window wins on volume when it is worth it; among windows within
:attr:`CampaignSettings.near_tie_share` of the best, one overlapping a
festival's buying period is preferred.

**Replay** (:func:`replay`) judges campaigns after the fact on daily series:
what sells, spoils and shrinks, and the share of the surplus that no longer
spoils, with the recommended campaigns, with none, and with the same
campaigns run naively one after another from the first day of the harvest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from agrimatch.agronomy import CropSpec
from agrimatch.festivals import (
    DOUBLE_11,
    MID_AUTUMN,
    SHOPPING_618,
    SPRING_FESTIVAL,
    festival_days,
)
from forecasting.balance import DAYS_PER_WEEK, StockFlows, carry_stock, shelf_weeks
from forecasting.campaign_uplift import UpliftEstimate, UpliftTable
from forecasting.frames import BALANCE_COLUMNS, DEMAND_COLUMNS

# The dip after a campaign lasts two weeks and fades exponentially, 95 % gone by
# the end (exp(-3)), as in the market simulator.
HANGOVER_DAYS = 14
_HANGOVER_TAU_DAYS = HANGOVER_DAYS / 3

# Buying periods, days relative to the festival day (first, last), after the
# shape of online food demand around each: gift buying in the three weeks
# before the lunar festivals (until couriers stop for Spring Festival), pre-sales
# running up to the platforms' shopping days.
_BUYING_DAYS = {
    SPRING_FESTIVAL: (-21, -2),
    MID_AUTUMN: (-21, 0),
    SHOPPING_618: (-17, 0),
    DOUBLE_11: (-20, 1),
}
_FESTIVAL_LABELS = {
    SPRING_FESTIVAL: "Spring Festival",
    MID_AUTUMN: "Mid-Autumn",
    SHOPPING_618: "618",
    DOUBLE_11: "Double 11",
}


class PlatformLike(Protocol):
    """A commerce platform as the scenario and the registry describe it."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def campaign_lead_days(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Festival:
    """A festival day and the period in which shoppers buy for it (inclusive)."""

    name: str
    day: date
    buying_start: date
    buying_end: date

    @property
    def label(self) -> str:
        """The festival's name in words."""
        return _FESTIVAL_LABELS.get(self.name, self.name)


@dataclass(frozen=True, slots=True)
class CampaignSettings:
    """How campaigns are searched for; the defaults are explained where they are used."""

    # One to three weeks: the group-buying campaigns of our shipped scenarios ran 7-21 days.
    lengths_days: tuple[int, ...] = (7, 14, 21)
    max_campaigns_per_surplus: int = 8
    # Stop splitting when the next window would absorb less than min_absorbed_kg, or less
    # than min_absorbed_share of the episode's spoiling kilograms. For a glut so far
    # beyond what the platforms take that no window reaches that share, the bar is
    # min_absorbed_share_of_first of what the first (best) campaign absorbs instead:
    # every campaign that saves a useful amount is still worth organising.
    min_absorbed_share: float = 0.01
    min_absorbed_share_of_first: float = 0.1
    min_absorbed_kg: float = 1000.0
    # Spoilage below this is noise of the median path, not a surplus to campaign for.
    min_spoiled_kg: float = 1000.0
    # estimate: cold-store fees in Chinese producing areas are of the order of
    # 0.1-0.15 CNY per kg a month, about 0.03 CNY/kg a week.
    storage_cost_cny_per_kg_week: float = 0.03
    near_tie_share: float = 0.005


@dataclass(frozen=True, slots=True)
class CampaignRecommendation:
    """A group-buying campaign to organise, and why.

    ``target_kg`` is what the campaign is expected to sell (its platform's
    demand times the uplift over the window, as far as stock allows);
    ``expected_absorbed_kg`` the part of it that would otherwise have spoiled
    or shrunk; ``value_at_risk_cny`` the value of the whole surplus episode
    that would spoil without any campaign (shared by the campaigns of one
    episode); ``value_saved_cny`` what this campaign saves (absorbed value plus
    storage avoided).
    """

    platform: str
    platform_name: str
    crop: str
    region: str
    start: date
    end: date
    target_kg: float
    expected_absorbed_kg: float
    value_at_risk_cny: float
    value_saved_cny: float
    uplift: float
    hangover: float
    surplus_at_risk_kg: float
    spoils_from: date
    reasons: list[str] = field(default_factory=list)

    @property
    def length_days(self) -> int:
        """Days the campaign runs, both ends included."""
        return (self.end - self.start).days + 1


def festival_calendar(years: Iterable[int]) -> list[Festival]:
    """Spring Festival, Mid-Autumn, 618 and Double 11 of ``years``, with their buying periods.

    The lunar dates come from China's holiday calendar (``holidays``); a year
    it has no date for is left out.
    """
    festivals = []
    for year in sorted(set(years)):
        for name, day in festival_days(year).items():
            first, last = _BUYING_DAYS.get(name, (0, 0))
            festivals.append(
                Festival(name, day, day + timedelta(days=first), day + timedelta(days=last))
            )
    return sorted(festivals, key=lambda f: f.day)


def recommend_campaigns(
    balance: pd.DataFrame,
    platforms: Sequence[PlatformLike],
    uplifts: UpliftTable,
    crops: Mapping[str, CropSpec],
    as_of: date,
    festivals: Sequence[Festival] | None = None,
    *,
    demand: pd.DataFrame | None = None,
    prices_cny_per_kg: Mapping[str, float] | None = None,
    settings: CampaignSettings | None = None,
) -> list[CampaignRecommendation]:
    """Campaigns for every projected surplus in ``balance``, ranked by value at risk.

    ``balance`` has ``BALANCE_COLUMNS``. ``demand`` (``DEMAND_COLUMNS``, the
    per-platform forecast the balance was built from) says which platforms sell
    each crop and region and how much; without it the balance's demand is
    split evenly over ``platforms``. ``crops`` is the crop catalog (usually
    :data:`agrimatch.agronomy.CROPS`) for shelf life, post-harvest loss and
    the reference price; ``as_of`` the planning date: no campaign starts before
    it plus the platform's lead time. ``festivals``
    default to :func:`festival_calendar` over the balance's years. Ties in
    value at risk rank by value saved, then start date.
    """
    settings = settings or CampaignSettings()
    missing = [c for c in BALANCE_COLUMNS if c not in balance.columns]
    if missing:
        raise ValueError(f"balance frame lacks columns {missing}")
    if balance.empty or not platforms:
        return []
    frame = balance.copy()
    frame["week"] = [pd.Timestamp(w).date() for w in frame["week"]]
    if festivals is None:
        years = {w.year for w in frame["week"]}
        festivals = festival_calendar(range(min(years) - 1, max(years) + 2))
    recommendations: list[CampaignRecommendation] = []
    for (crop, region), rows in frame.groupby(["crop", "region"], sort=True):
        spec = crops.get(str(crop))
        if spec is None:
            raise ValueError(f"crop {crop!r} is not in the crop catalog")
        price = (prices_cny_per_kg or {}).get(str(crop), spec.reference_price_cny_per_kg)
        series = _Series.of(str(crop), str(region), spec, price, rows, platforms, demand)
        recommendations.extend(_plan_series(series, platforms, uplifts, as_of, festivals, settings))
    return sorted(
        recommendations, key=lambda r: (-r.value_at_risk_cny, -r.value_saved_cny, r.start)
    )


# --- one crop and region ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Series:
    crop: str
    region: str
    spec: CropSpec
    price_cny_per_kg: float
    weeks: list[date]
    supply_kg: NDArray[np.float64]
    demand_kg: NDArray[np.float64]
    p_surplus: NDArray[np.float64]
    platform_demand_kg: dict[str, NDArray[np.float64]]

    @staticmethod
    def of(
        crop: str,
        region: str,
        spec: CropSpec,
        price: float,
        rows: pd.DataFrame,
        platforms: Sequence[PlatformLike],
        demand: pd.DataFrame | None,
    ) -> _Series:
        rows = rows.sort_values("week")
        first, last = rows["week"].iloc[0], rows["week"].iloc[-1]
        weeks = [first + timedelta(days=7 * k) for k in range((last - first).days // 7 + 1)]
        index = {w: k for k, w in enumerate(weeks)}
        at = rows["week"].map(index).to_numpy()

        def weekly(values: pd.Series) -> NDArray[np.float64]:
            out = np.zeros(len(weeks))
            np.add.at(out, at, values.to_numpy(dtype=np.float64))
            return out

        total = weekly(rows["demand_kg_p50"])
        per_platform: dict[str, NDArray[np.float64]] = {}
        if demand is None:
            for platform in platforms:
                per_platform[platform.id] = total / len(platforms)
        else:
            missing = [c for c in DEMAND_COLUMNS if c not in demand.columns]
            if missing:
                raise ValueError(f"demand frame lacks columns {missing}")
            mine = demand[(demand["crop"] == crop) & (demand["region"] == region)]
            for platform in platforms:
                of_platform = mine[mine["platform"] == platform.id]
                values = np.zeros(len(weeks))
                for week, kg in zip(of_platform["week"], of_platform["demand_kg_p50"], strict=True):
                    k = index.get(pd.Timestamp(week).date())
                    if k is not None:
                        values[k] += float(kg)
                if values.sum() > 0:
                    per_platform[platform.id] = values
        return _Series(
            crop=crop,
            region=region,
            spec=spec,
            price_cny_per_kg=price,
            weeks=weeks,
            supply_kg=weekly(rows["supply_kg_p50"]),
            demand_kg=total,
            p_surplus=weekly(rows["p_surplus"]),
            platform_demand_kg=per_platform,
        )

    def simulate(self, demand_kg: NDArray[np.float64]) -> StockFlows:
        supply = self.supply_kg if demand_kg.ndim == 1 else self.supply_kg[:, None]
        return carry_stock(
            supply, demand_kg, shelf_weeks(self.spec), self.spec.postharvest_loss_per_week
        )


@dataclass(frozen=True, slots=True)
class _Episode:
    first: int  # first week with stock
    first_spoil: int  # first week in which a lot spoils
    last: int  # last week in which a lot spoils
    spoiled_kg: float

    def deadline(self, weeks: Sequence[date]) -> date:
        return weeks[self.last] + timedelta(days=DAYS_PER_WEEK - 1)


@dataclass(frozen=True, slots=True)
class _Window:
    platform: str
    start: date
    end: date

    def clashes(self, other: _Window) -> bool:
        """Same platform, and closer than a hangover: platforms do not repeat a promotion
        before shoppers who stocked up in the last one are buying again."""
        gap = timedelta(days=HANGOVER_DAYS)
        return self.platform == other.platform and not (
            self.end + gap < other.start or other.end + gap < self.start
        )


def _episodes(flows: StockFlows, min_spoiled_kg: float) -> list[_Episode]:
    """Runs of weeks with produce in store in which some of it spoils."""
    in_store = (flows.stock_kg > 1e-6) | (flows.spoiled_kg > 1e-6)
    episodes = []
    k, n = 0, len(in_store)
    while k < n:
        if not in_store[k]:
            k += 1
            continue
        end = k
        while end + 1 < n and in_store[end + 1]:
            end += 1
        spoiled = flows.spoiled_kg[k : end + 1]
        if spoiled.sum() >= min_spoiled_kg:
            spoil_weeks = np.flatnonzero(spoiled > 1e-6) + k
            episodes.append(
                _Episode(
                    first=k,
                    first_spoil=int(spoil_weeks[0]),
                    last=int(spoil_weeks[-1]),
                    spoiled_kg=float(spoiled.sum()),
                )
            )
        k = end + 1
    return episodes


def _plan_series(
    series: _Series,
    platforms: Sequence[PlatformLike],
    uplifts: UpliftTable,
    as_of: date,
    festivals: Sequence[Festival],
    settings: CampaignSettings,
) -> list[CampaignRecommendation]:
    base = series.simulate(series.demand_kg)
    episodes = _episodes(base, settings.min_spoiled_kg)
    selling = [p for p in platforms if p.id in series.platform_demand_kg]
    if not episodes or not selling:
        return []
    demand = series.demand_kg.copy()
    flows = base
    chosen: list[_Window] = []
    out = []
    for episode in episodes:
        picked: list[tuple[_Window, UpliftEstimate, float, float, float, list[str]]] = []
        threshold = settings.min_absorbed_kg
        while len(picked) < settings.max_campaigns_per_surplus:
            candidates = _candidates(series, episode, selling, as_of, festivals, chosen, settings)
            if not candidates:
                break
            estimates = [uplifts.for_campaign(w.platform, series.crop) for w in candidates]
            effects = np.stack(
                [_weekly_effect(series, w, e) for w, e in zip(candidates, estimates, strict=True)],
                axis=1,
            )
            trial_demand = demand[:, None] + effects
            trial = series.simulate(np.maximum(trial_demand, 0.0))
            absorbed = float(_lost(flows)) - _lost(trial)
            stored = flows.stock_kg.sum() - trial.stock_kg.sum(axis=0)
            score = (
                absorbed * series.price_cny_per_kg + stored * settings.storage_cost_cny_per_kg_week
            )
            best = _pick(score, candidates, festivals, settings.near_tie_share)
            if absorbed[best] < threshold:
                break
            if not picked:
                share_of_surplus = settings.min_absorbed_share * episode.spoiled_kg
                share_of_first = settings.min_absorbed_share_of_first * float(absorbed[best])
                threshold = max(threshold, min(share_of_surplus, share_of_first))
            window, estimate = candidates[best], estimates[best]
            target = _campaign_sales(series, window, estimate, trial, trial_demand, best)
            demand = trial_demand[:, best].copy()
            flows = _column(trial, best)
            chosen.append(window)
            overlap = _festival_overlap(window, festivals)
            picked.append(
                (window, estimate, target, float(absorbed[best]), float(score[best]), overlap)
            )
        out.extend(_recommendations(series, episode, picked, platforms, as_of))
    return out


def _candidates(
    series: _Series,
    episode: _Episode,
    platforms: Sequence[PlatformLike],
    as_of: date,
    festivals: Sequence[Festival],
    chosen: Sequence[_Window],
    settings: CampaignSettings,
) -> list[_Window]:
    deadline = episode.deadline(series.weeks)
    stock_from = series.weeks[episode.first]
    found: dict[tuple[str, date, date], _Window] = {}
    for platform in platforms:
        earliest = max(as_of + timedelta(days=platform.campaign_lead_days), stock_from)
        if earliest > deadline:
            continue
        starts = {earliest, *(w for w in series.weeks if earliest < w <= deadline)}
        for festival in festivals:
            starts.add(festival.buying_start)
            for length in settings.lengths_days:
                starts.add(festival.day - timedelta(days=length - 1))
        for length in settings.lengths_days:
            starts.add(deadline - timedelta(days=length - 1))  # the latest window
            for start in starts:
                end = start + timedelta(days=length - 1)
                if start < earliest or end > deadline:
                    continue
                window = _Window(platform.id, start, end)
                if any(window.clashes(other) for other in chosen):
                    continue
                found[(platform.id, start, end)] = window
    return sorted(found.values(), key=lambda w: (w.start, w.end, w.platform))


def _weekly_effect(
    series: _Series, window: _Window, estimate: UpliftEstimate
) -> NDArray[np.float64]:
    """Change in a week's demand from one campaign: the uplift while it runs, the dip after."""
    platform_kg = series.platform_demand_kg[window.platform]
    first_day = series.weeks[0]
    n_days = len(series.weeks) * DAYS_PER_WEEK
    per_day = np.repeat(platform_kg / DAYS_PER_WEEK, DAYS_PER_WEEK)
    offsets = np.arange(n_days)
    start, end = (window.start - first_day).days, (window.end - first_day).days
    multiplier = np.ones(n_days)
    running = (offsets >= start) & (offsets <= end)
    multiplier[running] = estimate.uplift
    after = offsets - end - 1
    dip = (after >= 0) & (after < HANGOVER_DAYS)
    multiplier[dip] = 1.0 - estimate.hangover * np.exp(-after[dip] / _HANGOVER_TAU_DAYS)
    change = per_day * (multiplier - 1.0)
    return np.asarray(change.reshape(-1, DAYS_PER_WEEK).sum(axis=1), dtype=np.float64)


def _lost(flows: StockFlows) -> NDArray[np.float64]:
    return np.asarray((flows.spoiled_kg + flows.shrink_kg).sum(axis=0), dtype=np.float64)


def _column(flows: StockFlows, k: int) -> StockFlows:
    return StockFlows(
        sold_kg=flows.sold_kg[:, k],
        spoiled_kg=flows.spoiled_kg[:, k],
        shrink_kg=flows.shrink_kg[:, k],
        stock_kg=flows.stock_kg[:, k],
        unmet_kg=flows.unmet_kg[:, k],
    )


def _pick(
    score: NDArray[np.float64],
    candidates: Sequence[_Window],
    festivals: Sequence[Festival],
    near_tie_share: float,
) -> int:
    """The best window; among near-ties, the one with the most days in festival buying
    periods, then the best, then the earliest."""
    best = float(score.max())
    near = [int(k) for k in np.flatnonzero(score >= best - near_tie_share * abs(best))]

    def preference(k: int) -> tuple[int, float, int]:
        window = candidates[k]
        days_in_festivals = sum(
            max(0, (min(window.end, f.buying_end) - max(window.start, f.buying_start)).days + 1)
            for f in festivals
        )
        return (days_in_festivals, float(score[k]), -window.start.toordinal())

    return max(near, key=preference)


def _festival_overlap(window: _Window, festivals: Sequence[Festival]) -> list[str]:
    return [
        f"overlaps {f.label} {f.day.year} buying ({f.buying_start:%d %b}–{f.buying_end:%d %b})"
        for f in festivals
        if not (window.end < f.buying_start or f.buying_end < window.start)
    ]


def _campaign_sales(
    series: _Series,
    window: _Window,
    estimate: UpliftEstimate,
    trial: StockFlows,
    trial_demand: NDArray[np.float64],
    k: int,
) -> float:
    """What the campaign sells: its share of each week's demand times what the week sold."""
    platform_kg = series.platform_demand_kg[window.platform]
    total = 0.0
    for w, monday in enumerate(series.weeks):
        sunday = monday + timedelta(days=DAYS_PER_WEEK - 1)
        days = (min(sunday, window.end) - max(monday, window.start)).days + 1
        if days <= 0 or trial_demand[w, k] <= 0:
            continue
        campaign_kg = estimate.uplift * platform_kg[w] * days / DAYS_PER_WEEK
        total += float(trial.sold_kg[w, k]) * min(1.0, campaign_kg / trial_demand[w, k])
    return total


def _recommendations(
    series: _Series,
    episode: _Episode,
    picked: Sequence[tuple[_Window, UpliftEstimate, float, float, float, list[str]]],
    platforms: Sequence[PlatformLike],
    as_of: date,
) -> list[CampaignRecommendation]:
    names = {p.id: p.name for p in platforms}
    leads = {p.id: p.campaign_lead_days for p in platforms}
    weeks, spec = series.weeks, series.spec
    deadline = episode.deadline(weeks)
    spoils_from = weeks[episode.first_spoil]
    value_at_risk = episode.spoiled_kg * series.price_cny_per_kg
    span = slice(episode.first, episode.last + 1)
    peak = episode.first + int(np.argmax(series.supply_kg[span]))
    out = []
    for n, (window, estimate, target, absorbed, saved, festivals) in enumerate(picked, start=1):
        ready = as_of + timedelta(days=leads[window.platform])
        reasons = [
            f"surplus: {episode.spoiled_kg / 1000:,.0f} t of {series.crop} from {series.region} "
            f"would spoil unsold from the week of {spoils_from} (P50 supply against P50 demand, "
            f"stock kept {spec.shelf_life_days:g} days); {value_at_risk:,.0f} CNY at risk at "
            f"{series.price_cny_per_kg:g} CNY/kg; P(surplus) {series.p_surplus[peak]:.0%} in the "
            f"harvest peak week of {weeks[peak]}",
            f"starts {window.start}: {names[window.platform]} needs "
            f"{leads[window.platform]} days to organise a campaign (ready from {ready}); "
            f"stock is in from the week of {weeks[episode.first]}",
            f"ends {window.end}, {(deadline - window.end).days} days before the last of the "
            f"surplus spoils ({deadline})",
            f"uplift {estimate.uplift:.1f}× (P10–P90 {estimate.uplift_p10:.1f}–"
            f"{estimate.uplift_p90:.1f}×), hangover {estimate.hangover:.0%}: {estimate.basis}",
            f"sells about {target / 1000:,.0f} t, of which {absorbed / 1000:,.0f} t would "
            f"otherwise spoil or shrink; saves {saved:,.0f} CNY with storage",
            *festivals,
        ]
        if len(picked) > 1:
            reasons.append(
                f"campaign {n} of {len(picked)} for this surplus: one platform cannot absorb it"
                " in one window"
            )
        out.append(
            CampaignRecommendation(
                platform=window.platform,
                platform_name=names[window.platform],
                crop=series.crop,
                region=series.region,
                start=window.start,
                end=window.end,
                target_kg=round(target, 1),
                expected_absorbed_kg=round(absorbed, 1),
                value_at_risk_cny=round(value_at_risk, 2),
                value_saved_cny=round(saved, 2),
                uplift=estimate.uplift,
                hangover=estimate.hangover,
                surplus_at_risk_kg=round(episode.spoiled_kg, 1),
                spoils_from=spoils_from,
                reasons=reasons,
            )
        )
    return out


# --- replay --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """Daily replay of one set of campaigns: kilograms over the whole series.

    ``sold_share`` is sold over supply. ``surplus_cleared_share`` is the share
    of the surplus (what spoils unsold without any campaign) that no longer
    spoils: 0 for no campaigns, 1 when nothing spoils any more, negative when
    campaigns make things worse. ``lost_kg`` is what never sells: spoiled
    plus shrunk in store.
    """

    sold_kg: float
    spoiled_kg: float
    shrink_kg: float
    unmet_kg: float
    sold_share: float
    surplus_cleared_share: float

    @property
    def lost_kg(self) -> float:
        return self.spoiled_kg + self.shrink_kg


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """The replay with the recommended campaigns, with none, and with a naive start."""

    supply_kg: float
    surplus_kg: float  # spoiled unsold without campaigns
    recommended: ReplayOutcome
    none: ReplayOutcome
    naive: ReplayOutcome
    naive_campaigns: tuple[tuple[str, date, date], ...]  # (platform, start, end)
    # Every platform campaigning every day of the series at its uplift: as much as
    # campaigns on these platforms could ever clear (None unless uplifts were given).
    ceiling: ReplayOutcome | None = None


def replay(
    supply_kg: pd.Series,
    demand_kg: Mapping[str, pd.Series],
    campaigns: Sequence[CampaignRecommendation],
    shelf_life_days: float,
    postharvest_loss_per_week: float = 0.0,
    ceiling_uplifts: Mapping[str, float] | None = None,
) -> ReplayResult:
    """Replay a harvest against daily demand with and without campaigns.

    ``supply_kg`` is the harvest per day (a series indexed by date);
    ``demand_kg`` the baseline demand per day of each platform (without
    campaigns). Campaigns multiply their platform's demand by their
    ``uplift`` while they run and take back their ``hangover`` after, as in
    :func:`recommend_campaigns`; a campaign on a platform without a demand
    series sells nothing. The naive alternative is what an organiser does
    without a forecast: the same campaigns (platforms, lengths, uplifts) from
    the first day of the harvest, each platform's one after another with the
    hangover between them, as the recommendations must keep. With
    ``ceiling_uplifts`` (platform → uplift) the ``ceiling`` outcome has each
    of those platforms run one campaign over the whole series: what no
    choice of windows on them can beat.
    """
    supply = _daily(supply_kg)
    if supply.empty:
        raise ValueError("supply_kg is empty")
    demand = {p: _daily(s) for p, s in demand_kg.items()}
    days = [supply.index.min(), supply.index.max()]
    for series in demand.values():
        if not series.empty:
            days += [series.index.min(), series.index.max()]
    index = pd.date_range(min(days), max(days), freq="D")
    supply_arr = supply.reindex(index, fill_value=0.0).to_numpy(dtype=np.float64)
    demand_arr = {
        p: s.reindex(index, fill_value=0.0).to_numpy(dtype=np.float64) for p, s in demand.items()
    }
    first_day = index[0].date()
    shelf = max(1, int(shelf_life_days))
    loss_per_day = 1.0 - (1.0 - postharvest_loss_per_week) ** (1.0 / DAYS_PER_WEEK)

    harvesting = np.flatnonzero(supply_arr > 0)
    if not len(harvesting):
        raise ValueError("supply_kg has no day with a harvest")
    harvest_start = index[int(harvesting[0])].date()
    naive = _from_harvest_start(campaigns, harvest_start)
    recommended = [(c.platform, c.start, c.end, c.uplift, c.hangover) for c in campaigns]

    def run(plan: Sequence[tuple[str, date, date, float, float]]) -> StockFlows:
        total = np.zeros(len(index))
        for platform, series in demand_arr.items():
            multiplier = daily_campaign_multiplier(
                [p for p in plan if p[0] == platform], first_day, len(index)
            )
            total += series * multiplier
        return carry_stock(supply_arr, total, shelf, loss_per_day)

    flows = {"recommended": run(recommended), "none": run([]), "naive": run(naive)}
    if ceiling_uplifts is not None:
        last_day = index[-1].date()
        flows["ceiling"] = run(
            [(p, first_day, last_day, u, 0.0) for p, u in ceiling_uplifts.items() if p in demand]
        )
    supply_total = float(supply_arr.sum())
    surplus = float(flows["none"].spoiled_kg.sum())
    outcomes = {
        name: ReplayOutcome(
            sold_kg=float(f.sold_kg.sum()),
            spoiled_kg=float(f.spoiled_kg.sum()),
            shrink_kg=float(f.shrink_kg.sum()),
            unmet_kg=float(f.unmet_kg.sum()),
            sold_share=float(f.sold_kg.sum()) / supply_total if supply_total else 0.0,
            surplus_cleared_share=(
                (surplus - float(f.spoiled_kg.sum())) / surplus if surplus else 0.0
            ),
        )
        for name, f in flows.items()
    }
    return ReplayResult(
        supply_kg=supply_total,
        surplus_kg=surplus,
        recommended=outcomes["recommended"],
        none=outcomes["none"],
        naive=outcomes["naive"],
        naive_campaigns=tuple((p, s, e) for p, s, e, _, _ in naive),
        ceiling=outcomes.get("ceiling"),
    )


def _from_harvest_start(
    campaigns: Sequence[CampaignRecommendation], harvest_start: date
) -> list[tuple[str, date, date, float, float]]:
    """The campaigns packed from the harvest's first day, per platform in their own order."""
    naive = []
    next_start: dict[str, date] = {}
    for c in sorted(campaigns, key=lambda c: c.start):
        start = next_start.get(c.platform, harvest_start)
        end = start + timedelta(days=c.length_days - 1)
        naive.append((c.platform, start, end, c.uplift, c.hangover))
        next_start[c.platform] = end + timedelta(days=HANGOVER_DAYS + 1)
    return naive


def _daily(series: pd.Series) -> pd.Series:
    out = pd.Series(
        series.to_numpy(dtype=np.float64), index=pd.DatetimeIndex(pd.to_datetime(series.index))
    )
    return out.groupby(level=0).sum().sort_index()


def daily_campaign_multiplier(
    plan: Sequence[tuple[str, date, date, float, float]], first_day: date, n_days: int
) -> NDArray[np.float64]:
    """A platform's demand multiplier for ``n_days`` from ``first_day`` under ``plan``.

    ``plan`` rows are ``(platform, start, end, uplift, hangover)``: the uplift
    while a campaign runs, then the hangover's dip fading over two weeks.
    """
    offsets = np.arange(n_days)
    multiplier = np.ones(n_days)
    for _, start, end, uplift, hangover in plan:
        first, last = (start - first_day).days, (end - first_day).days
        running = (offsets >= first) & (offsets <= last)
        multiplier[running] *= uplift
        after = offsets - last - 1
        dip = (after >= 0) & (after < HANGOVER_DAYS)
        multiplier[dip] *= 1.0 - hangover * np.exp(-after[dip] / _HANGOVER_TAU_DAYS)
    return multiplier
