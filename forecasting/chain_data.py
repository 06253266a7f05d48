"""What the forecast chain reads, loaded once: registry seasons, daily telemetry, demand.

:func:`load_chain_data` is the chain's only I/O: the seasons and campaign
history from the registry, the daily per-field telemetry and the daily
platform demand from the store, over one period. :meth:`ChainData.until`
then cuts a copy as it was known on a day, so a backtest loads once and
replays many dates, and the chain itself cannot read past its ``as_of``:
telemetry and demand stop the day before, campaigns must have started, and
a season's truth only counts once it was harvested (:func:`split_seasons`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from agrimatch.agronomy.seasons import planting_date, season_year_of
from agrimatch.registry.models import Field, Platform, Season
from agrimatch.registry.repository import find_fields, list_campaigns, list_seasons
from agrimatch.store import TelemetryStore
from forecasting.campaigns import PlatformLike
from forecasting.demand_data import daily_demand_frame
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.telemetry_frames import daily_field_frame, day_start_ms, empty_daily_frame

TRUTH_COLUMNS = ("yield_t_ha", "harvest_start", "harvest_peak", "harvest_end")
# A field's standing plan (the registry's fields table): what it grows and when it is sown.
PLAN_COLUMNS = ("farm", "field", "region", "crop", "soil", "area_ha", "planting_month_day")
# Why a field-season is forecast, in the forecasts' "basis" column.
BASIS_REGISTRY = "registry"  # a season the registry holds (sown or planned)
BASIS_SOWN_PER_PLAN = "sown per the field's plan"  # the plan's date has passed; not recorded
BASIS_PLANNED = "planned, not sown yet"  # next season of the field's plan
# A season sown by its plan is taken as still in the ground this long when its crop has
# no recorded season to say how long one lasts.
DEFAULT_SEASON_DAYS = 366
CAMPAIGN_COLUMNS = (
    "platform",
    "crop",
    "region",
    "start_on",
    "end_on",
    "uplift",
    "hangover",
    "volume_kg",
    "source",
)


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """A platform as the chain needs it (detached from the registry session)."""

    id: str
    name: str
    campaign_lead_days: int


@dataclass(frozen=True, slots=True, eq=False)
class ChainData:
    """Everything the chain reads, for one period.

    ``seasons``: FIELD_SEASON_COLUMNS + TRUTH_COLUMNS (truth NaN/None when not
    recorded); ``daily``: DAILY_FIELD_COLUMNS; ``demand_daily``: the daily
    platform demand (forecasting.demand_data); ``campaigns``: CAMPAIGN_COLUMNS.
    ``daily_in_store``: None when ``daily`` holds the period's telemetry; else
    the period ``(first, end)`` whose telemetry was left in the store
    (``daily`` empty) for a cluster's workers to read region by region
    (:mod:`forecasting.distributed`).
    """

    seasons: pd.DataFrame
    daily: pd.DataFrame
    demand_daily: pd.DataFrame
    campaigns: pd.DataFrame
    platforms: tuple[PlatformLike, ...]
    daily_in_store: tuple[date, date] | None = None
    # The fields' standing plans (PLAN_COLUMNS): a field's next season when none is recorded.
    plans: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(PLAN_COLUMNS)))

    def until(self, as_of: date) -> ChainData:
        """The data as known on ``as_of``: telemetry and demand before it, campaigns started."""
        daily = self.daily[self.daily["day"] < as_of]
        demand = self.demand_daily[self.demand_daily["day"] < as_of]
        campaigns = self.campaigns[self.campaigns["start_on"] < as_of]
        return replace(self, daily=daily, demand_daily=demand, campaigns=campaigns)


def load_chain_data(
    store: TelemetryStore, session: Session, first: date, end: date, *, daily: bool = True
) -> ChainData:
    """Registry seasons and campaigns, and store telemetry and demand in ``[first, end)``.

    ``daily=False`` leaves the daily telemetry in the store (``daily_in_store``):
    for a forecast engine whose workers read it themselves."""
    start_ms, end_ms = day_start_ms(first), day_start_ms(end)
    platforms = tuple(
        PlatformInfo(p.id, p.name, p.campaign_lead_days) for p in session.query(Platform).all()
    )
    return ChainData(
        seasons=seasons_frame(list_seasons(session)),
        daily=daily_field_frame(store, start_ms, end_ms) if daily else empty_daily_frame(),
        demand_daily=daily_demand_frame(store, start_ms, end_ms),
        campaigns=campaigns_frame(session),
        platforms=platforms,
        daily_in_store=None if daily else (first, end),
        plans=plans_frame(find_fields(session)),
    )


def seasons_frame(seasons: Sequence[Season]) -> pd.DataFrame:
    """Registry seasons as FIELD_SEASON_COLUMNS plus their truth (NaN/None when unknown)."""
    rows = [
        {
            "farm": s.farm_id,
            "field": s.field_id,
            "region": s.field.farm.region_id,
            "crop": s.crop,
            "soil": s.field.soil,
            "area_ha": s.area_ha,
            "year": s.year,
            "planted_on": s.planted_on,
            "yield_t_ha": s.yield_t_ha,
            "harvest_start": s.harvest_start,
            "harvest_peak": s.harvest_peak,
            "harvest_end": s.harvest_end,
        }
        for s in seasons
    ]
    return pd.DataFrame(rows, columns=[*FIELD_SEASON_COLUMNS, *TRUTH_COLUMNS])


def plans_frame(fields: Sequence[Field]) -> pd.DataFrame:
    """Registry fields as PLAN_COLUMNS: each field's crop, area and planting month-day."""
    rows = [
        (f.farm_id, f.field_id, f.farm.region_id, f.crop, f.soil, f.area_ha, f.planting_month_day)
        for f in fields
    ]
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS))


def campaigns_frame(session: Session) -> pd.DataFrame:
    """The registry's campaign history as CAMPAIGN_COLUMNS."""
    rows = [
        (
            c.platform_id,
            c.crop,
            c.region_id,
            c.start_on,
            c.end_on,
            c.uplift,
            c.hangover,
            c.volume_kg,
            c.source,
        )
        for c in list_campaigns(session)
    ]
    return pd.DataFrame(rows, columns=list(CAMPAIGN_COLUMNS))


def split_seasons(frame: pd.DataFrame, as_of: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, current): harvested before ``as_of`` with truth; planted by it and not over.

    ``current`` carries no truth: its truth columns are blanked, so nothing
    downstream can read a yield that was not known on ``as_of``.
    """
    known = frame["harvest_end"].notna() & frame["yield_t_ha"].notna()
    harvested = known & frame["harvest_end"].map(lambda d: d is not None and d < as_of)
    history = frame[harvested].reset_index(drop=True)
    planted = frame["planted_on"].map(lambda d: d <= as_of)
    # A season is current when planted and not harvested yet as far as as_of can tell;
    # older unharvested-looking seasons (no truth, planted over a year ago) are stale.
    recent = frame["planted_on"].map(lambda d: (as_of - d).days < 366)
    current = _without_truth(frame[planted & ~harvested & recent])
    return history, current


def planned_seasons(frame: pd.DataFrame, as_of: date, current: pd.DataFrame) -> pd.DataFrame:
    """The seasons of ``current``'s years that the registry plans but are not sown by
    ``as_of`` (the maize after the garlic), truth blanked as ``current``'s is."""
    years = set(current["year"])
    later = frame["year"].isin(years) & frame["planted_on"].map(lambda d: d > as_of)
    return _without_truth(frame[later])


def seasons_to_forecast(seasons: pd.DataFrame, plans: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Every field-season to forecast as of ``as_of``, truth blanked, with a ``basis`` column.

    The registry's seasons in progress and those it plans for the same years
    (:func:`split_seasons`, :func:`planned_seasons`) come first. A field with
    none of those (December: the maize is in, the next season is not recorded)
    gets its next season: the registry's own when it records one within a
    year, else the one its standing plan (``plans``, PLAN_COLUMNS) implies
    after its last recorded season — sown already when the plan's date has
    passed and the crop would still be in the ground (garlic sown in October),
    planned otherwise. So the forecast has something to say all year.
    """
    _, current = split_seasons(seasons, as_of)
    recorded = pd.concat([current, planned_seasons(seasons, as_of, current)], ignore_index=True)
    parts = [recorded.assign(basis=BASIS_REGISTRY)]
    covered = set(zip(recorded["farm"], recorded["field"], strict=True))
    soon = np.array(
        [
            as_of < d <= as_of + timedelta(days=366) and (f, g) not in covered
            for f, g, d in zip(
                seasons["farm"], seasons["field"], seasons["planted_on"], strict=True
            )
        ],
        dtype=bool,
    )
    ahead = seasons[soon]
    if len(ahead):
        ahead = ahead.sort_values("planted_on").drop_duplicates(["farm", "field"])
        parts.append(_without_truth(ahead).assign(basis=BASIS_REGISTRY))
        covered |= set(zip(ahead["farm"], ahead["field"], strict=True))
    last_year = seasons.groupby(["farm", "field"])["year"].max().to_dict()
    lasts = _season_days(seasons, as_of)
    rows = []
    for plan in plans.itertuples(index=False):
        key = (plan.farm, plan.field)
        if key in covered:
            continue
        next_season = _next_planned_season(plan, last_year.get(key), lasts, as_of)
        if next_season is not None:
            year, basis = next_season
            planted = planting_date(plan.crop, plan.planting_month_day, year)
            rows.append({**plan._asdict(), "year": year, "planted_on": planted, "basis": basis})
    if rows:
        from_plans = pd.DataFrame(rows).drop(columns=["planting_month_day"])
        parts.append(_without_truth(from_plans))
    return pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)


def _season_days(seasons: pd.DataFrame, as_of: date) -> dict[str, float]:
    """Per crop, the median days from planting to the end of harvest of its seasons
    harvested before ``as_of``."""
    history, _ = split_seasons(seasons, as_of)
    if history.empty:
        return {}
    days = [(end - start).days for start, end in zip(
        history["planted_on"], history["harvest_end"], strict=True)]  # fmt: skip
    return history.assign(days=days).groupby("crop")["days"].median().to_dict()


def _next_planned_season(
    plan: Any, last_year: int | None, season_days: dict[str, float], as_of: date
) -> tuple[int, str] | None:
    """The season year the field's plan has next as of ``as_of`` and its basis; None when
    the plan's next season is not after the field's last recorded one."""
    crop, month_day = str(plan.crop), str(plan.planting_month_day)
    year = season_year_of(crop, month_day, as_of)  # the latest planted by as_of
    lasts = season_days.get(crop, DEFAULT_SEASON_DAYS)
    sown = planting_date(crop, month_day, year)
    if (as_of - sown).days >= lasts or (last_year is not None and year <= last_year):
        year += 1  # over (or recorded): the next one
        if last_year is not None and year <= last_year:
            return None  # the record runs past as_of: nothing the plan can add
        return year, BASIS_PLANNED
    return year, BASIS_SOWN_PER_PLAN


def _without_truth(seasons: pd.DataFrame) -> pd.DataFrame:
    """``seasons`` with yield and harvest blanked: nothing downstream can read them."""
    return seasons.reset_index(drop=True).assign(
        yield_t_ha=float("nan"), harvest_start=None, harvest_peak=None, harvest_end=None
    )


def history_key(history: pd.DataFrame) -> str:
    """A short stable name for a training history: the hash of its field-seasons."""
    keys = sorted(f"{f}/{g}/{y}" for f, g, y in history[["farm", "field", "year"]].to_numpy())
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
