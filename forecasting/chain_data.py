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
from dataclasses import dataclass, replace
from datetime import date

import pandas as pd
from sqlalchemy.orm import Session

from agrimatch.registry.models import Platform, Season
from agrimatch.registry.repository import list_campaigns, list_seasons
from agrimatch.store import TelemetryStore
from forecasting.campaigns import PlatformLike
from forecasting.demand_data import daily_demand_frame
from forecasting.frames import FIELD_SEASON_COLUMNS
from forecasting.telemetry_frames import daily_field_frame, day_start_ms

TRUTH_COLUMNS = ("yield_t_ha", "harvest_start", "harvest_peak", "harvest_end")
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
    """

    seasons: pd.DataFrame
    daily: pd.DataFrame
    demand_daily: pd.DataFrame
    campaigns: pd.DataFrame
    platforms: tuple[PlatformLike, ...]

    def until(self, as_of: date) -> ChainData:
        """The data as known on ``as_of``: telemetry and demand before it, campaigns started."""
        daily = self.daily[self.daily["day"] < as_of]
        demand = self.demand_daily[self.demand_daily["day"] < as_of]
        campaigns = self.campaigns[self.campaigns["start_on"] < as_of]
        return replace(self, daily=daily, demand_daily=demand, campaigns=campaigns)


def load_chain_data(store: TelemetryStore, session: Session, first: date, end: date) -> ChainData:
    """Registry seasons and campaigns, and store telemetry and demand in ``[first, end)``."""
    start_ms, end_ms = day_start_ms(first), day_start_ms(end)
    platforms = tuple(
        PlatformInfo(p.id, p.name, p.campaign_lead_days) for p in session.query(Platform).all()
    )
    return ChainData(
        seasons=seasons_frame(list_seasons(session)),
        daily=daily_field_frame(store, start_ms, end_ms),
        demand_daily=daily_demand_frame(store, start_ms, end_ms),
        campaigns=campaigns_frame(session),
        platforms=platforms,
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


def _without_truth(seasons: pd.DataFrame) -> pd.DataFrame:
    """``seasons`` with yield and harvest blanked: nothing downstream can read them."""
    return seasons.reset_index(drop=True).assign(
        yield_t_ha=float("nan"), harvest_start=None, harvest_peak=None, harvest_end=None
    )


def history_key(history: pd.DataFrame) -> str:
    """A short stable name for a training history: the hash of its field-seasons."""
    keys = sorted(f"{f}/{g}/{y}" for f, g, y in history[["farm", "field", "year"]].to_numpy())
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
