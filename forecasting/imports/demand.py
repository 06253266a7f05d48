"""Platform sales history from a table: daily (or weekly) demand into the store, campaigns
and new platforms into the registry.

Columns (:data:`DEMAND_COLUMNS`): ``platform, crop, region``, one of ``day``
or ``week`` per row, ``quantity_kg, orders, price_cny_per_kg`` and
optionally ``campaign`` and ``platform_name``.

* **Days.** Each day of a series (platform, crop, region) becomes one
  ``demand`` point, exactly as the market simulator writes it
  (:func:`agrimatch.store.measurements.demand_point`: stamped 00:00
  Asia/Shanghai). A ``week`` row (its Monday) is spread evenly over its
  seven days: a seventh of the kilograms each day, the orders split into
  whole numbers that add up to the week's (the remainder on its first
  days), the week's price every day. Writing a day again replaces it, so an
  import can be repeated.
* **Campaigns.** ``campaign`` empty (or 0, no, false) is an ordinary day;
  anything else marks a day of a group-buying campaign, a label such as
  ``618`` or just ``1``. Consecutive campaign days of one series with the
  same label become one ``Campaign`` row with source "history", its
  ``volume_kg`` the kilograms sold on those days and its uplift and
  hangover measured from the days around it (in the table, else already in
  the store): see :mod:`forecasting.imports._campaign_history`. A week row
  marks all its seven days.
* **Registry.** The region must be in the registry (import farms first) and
  the crop in the catalog. A platform not in the registry is created, named
  ``platform_name`` (default: its id) with
  :data:`DEFAULT_CAMPAIGN_LEAD_DAYS`; platforms already there are left as
  they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import islice

from sqlalchemy import select
from sqlalchemy.orm import Session

from agrimatch.agronomy import CROPS
from agrimatch.registry import (
    Platform,
    Region,
    list_campaigns,
    record_campaign_outcome,
    record_campaigns,
    upsert_rows,
)
from agrimatch.store import Point, StoreError, TelemetryStore
from agrimatch.store.measurements import china_day_start_ms, demand_point
from forecasting.demand_data import daily_demand_frame
from forecasting.imports._campaign_history import (
    BASELINE_DAYS,
    campaign_runs,
    measure_campaign,
)
from forecasting.imports._csv import CellReader, Column, RawTable, check_columns
from forecasting.imports._report import BadRow, ImportReport, by_line

KIND = "demand"
DEMAND_COLUMNS = (
    Column("platform", True, "the platform's id", "pinduoduo"),
    Column("crop", True, "a crop of the catalog", "garlic"),
    Column(
        "region", True, "the id of a region in the registry (where the crop comes from)", "zhongmou"
    ),
    Column("day", False, "the day of the sales (or give week)", "2024-06-18"),
    Column("week", False, "the Monday of a week of sales (or give day)", "2024-06-17"),
    Column("quantity_kg", True, "the kilograms sold, 0 or more", "5200"),
    Column("orders", True, "the number of orders, a whole number 0 or more", "830"),
    Column("price_cny_per_kg", True, "the mean price paid in CNY per kg, above 0", "6.4"),
    Column("campaign", False, "empty, or a label (or 1) on a group-buying campaign day", "618"),
    Column("platform_name", False, "the platform's display name (a new platform)", "Pinduoduo"),
)
ONE_OF = (("day", "week"),)
# As a scenario's platform (agrimatch.scenario.Platform): two weeks to organise a campaign.
DEFAULT_CAMPAIGN_LEAD_DAYS = 14
DAYS_PER_WEEK = 7
_BATCH_POINTS = 5000
_HANGOVER_WINDOW_DAYS = 14  # read past a campaign's end, for its hangover


@dataclass(frozen=True, slots=True)
class DemandRow:
    """A demand row that reads well on its own: one day, or the seven of a week."""

    line: int
    platform: str
    crop: str
    region: str
    first_day: date
    days: int  # 1, or 7 for a week row
    quantity_kg: float
    orders: int
    price_cny_per_kg: float
    campaign: str | None  # None: no campaign; '' an unlabelled one
    platform_name: str | None

    @property
    def series(self) -> tuple[str, str, str]:
        return (self.platform, self.crop, self.region)


@dataclass(frozen=True, slots=True)
class DemandDay:
    """One day of one series, as written to the store."""

    quantity_kg: float
    orders: int
    price_cny_per_kg: float
    campaign: str | None


@dataclass(frozen=True, slots=True)
class HistoryCampaign:
    """A campaign found in the history; satisfies ``agrimatch.registry.CampaignFacts``."""

    platform: str
    crop: str
    region: str
    start: date
    end: date
    uplift: float
    hangover: float
    volume_kg: float
    baseline_days: int


def parse_demand_rows(table: RawTable) -> tuple[list[DemandRow], list[BadRow]]:
    """Read every row on its own, then check no day of a series is given twice; pure."""
    rows: list[DemandRow] = []
    bad: list[BadRow] = []
    for raw in table.rows:
        if raw.problem:
            bad.append(BadRow(raw.line, None, raw.problem))
            continue
        cells = CellReader(raw, DEMAND_COLUMNS)
        platform = cells.identifier("platform")
        crop = cells.choice("crop", CROPS, "crop")
        region = cells.identifier("region")
        first_day, days = _period(cells)
        quantity_kg = cells.number("quantity_kg", low=0.0)
        orders = cells.whole_number("orders", low=0)
        price = cells.number("price_cny_per_kg", above=0.0)
        bad.extend(cells.problems)
        if (
            cells.problems
            or platform is None
            or crop is None
            or region is None
            or first_day is None
            or quantity_kg is None
            or orders is None
            or price is None
        ):
            continue
        rows.append(
            DemandRow(
                raw.line,
                platform,
                crop,
                region,
                first_day,
                days,
                quantity_kg,
                orders,
                price,
                cells.flag("campaign"),
                cells.text("platform_name") or None,
            )
        )
    good, repeated = _without_repeats(rows)
    return good, bad + repeated


def daily_series(rows: Sequence[DemandRow]) -> dict[tuple[str, str, str], dict[date, DemandDay]]:
    """The days of each series (platform, crop, region); week rows spread over their days."""
    series: dict[tuple[str, str, str], dict[date, DemandDay]] = defaultdict(dict)
    for row in rows:
        base_orders, extra_orders = divmod(row.orders, row.days)
        for n in range(row.days):
            series[row.series][row.first_day + timedelta(days=n)] = DemandDay(
                quantity_kg=row.quantity_kg / row.days,
                orders=base_orders + (1 if n < extra_orders else 0),
                price_cny_per_kg=row.price_cny_per_kg,
                campaign=row.campaign,
            )
    return dict(series)


def demand_points(series: dict[tuple[str, str, str], dict[date, DemandDay]]) -> Iterator[Point]:
    """The store's ``demand`` points of ``series``, day by day."""
    for (platform, crop, region), days in series.items():
        for day, values in sorted(days.items()):
            yield demand_point(
                platform,
                crop,
                region,
                day,
                quantity_kg=values.quantity_kg,
                orders=values.orders,
                price_cny_per_kg=values.price_cny_per_kg,
            )


def import_demand(
    session: Session, store: TelemetryStore, table: RawTable, *, dry_run: bool = False
) -> ImportReport:
    """Check every row of ``table`` and, when all are good and not ``dry_run``, write the
    daily demand to ``store`` and new platforms and the campaigns found to the registry
    (see the module docstring).

    All or nothing as far as the rows go: with any bad row nothing is written.
    The registry writes are flushed in ``session`` for the caller to commit;
    the store is written before that, so if the store fails (``StoreError``,
    ``StoreUnavailable`` propagate) the caller's rollback leaves the registry
    as it was, and if the commit fails the points already stored are the same
    ones a rerun writes. Raises :class:`~forecasting.imports.ImportFormatError`
    when a required column is missing.
    """
    ignored = check_columns(table, KIND, DEMAND_COLUMNS, one_of=ONE_OF)
    rows, bad = parse_demand_rows(table)
    regions = sorted({row.region for row in rows})
    known_regions = set(session.scalars(select(Region.id).where(Region.id.in_(regions))))
    bad += [
        BadRow(
            row.line,
            "region",
            f"region {row.region} is not in the registry: import farms first (a region is "
            "created with its first farm), or fix the id",
        )
        for row in rows
        if row.region not in known_regions
    ]
    if bad:
        return ImportReport(KIND, len(table.rows), by_line(bad), {}, dry_run, ignored)

    names: dict[str, str | None] = {}
    for row in rows:
        if names.get(row.platform) is None:
            names[row.platform] = row.platform_name
    known_platforms = set(session.scalars(select(Platform.id).where(Platform.id.in_(names))))
    new_platforms = {p: name or p for p, name in names.items() if p not in known_platforms}
    series = daily_series(rows)
    campaigns = _history_campaigns(session, store, series)
    counts = {
        "demand days": sum(len(days) for days in series.values()),
        "platforms (new)": len(new_platforms),
        "campaigns (history)": len(campaigns),
    }
    notes = tuple(_describe(c) for c in campaigns)
    if not dry_run:
        platform_rows = [
            {"id": p, "name": name, "campaign_lead_days": DEFAULT_CAMPAIGN_LEAD_DAYS}
            for p, name in sorted(new_platforms.items())
        ]
        upsert_rows(session, Platform, platform_rows, ["id"], update=[])
        _write_points(store, demand_points(series))
        for recorded, campaign in zip(record_campaigns(session, campaigns), campaigns, strict=True):
            record_campaign_outcome(session, recorded.id, volume_kg=campaign.volume_kg)
    return ImportReport(KIND, len(table.rows), (), counts, dry_run, ignored, notes)


def _period(cells: CellReader) -> tuple[date | None, int]:
    """The row's first day and its number of days: a day, or a week from its Monday."""
    day_text, week_text = cells.text("day"), cells.text("week")
    if day_text and week_text:
        cells.fail("week", "and day are both given: give one of them (a day, or a week's Monday)")
        return None, 1
    if not day_text and not week_text:
        cells.fail("day", "and week are both empty: give the day (or a week's Monday)")
        return None, 1
    if day_text:
        return cells.day("day"), 1
    monday = cells.day("week")
    if monday is not None and monday.weekday() != 0:
        named = monday - timedelta(days=monday.weekday())
        cells.fail(
            "week",
            f"{monday} is a {monday:%A}: a week is given by its Monday, here {named}",
        )
        return None, DAYS_PER_WEEK
    return monday, DAYS_PER_WEEK


def _without_repeats(rows: Sequence[DemandRow]) -> tuple[list[DemandRow], list[BadRow]]:
    """Rows none of whose days an earlier row of the same series already gave."""
    owner: dict[tuple[str, str, str, date], DemandRow] = {}
    good, bad = [], []
    for row in rows:
        days = [row.first_day + timedelta(days=n) for n in range(row.days)]
        clash = next((owner[(*row.series, d)] for d in days if (*row.series, d) in owner), None)
        if clash is None:
            owner.update({(*row.series, d): row for d in days})
            good.append(row)
            continue
        series = "/".join(row.series)
        if clash.days == 1 and row.days == 1:
            reason = (
                f"repeats line {clash.line}'s platform/crop/region/day {series}/{row.first_day}"
            )
        else:
            mine = "day" if row.days == 1 else "week"
            theirs = "day" if clash.days == 1 else "week"
            reason = (
                f"its {mine} {row.first_day} of {series} overlaps line {clash.line}'s "
                f"{theirs} {clash.first_day}"
            )
        bad.append(BadRow(row.line, None, f"{reason}: give each day of a series once"))
    return good, bad


def _history_campaigns(
    session: Session,
    store: TelemetryStore,
    series: dict[tuple[str, str, str], dict[date, DemandDay]],
) -> list[HistoryCampaign]:
    """The campaigns of each series, measured against the days around them."""
    found = []
    for (platform, crop, region), days in sorted(series.items()):
        labels = {day: v.campaign for day, v in days.items() if v.campaign is not None}
        if not labels:
            continue
        first = min(labels) - timedelta(days=BASELINE_DAYS)
        last = max(labels) + timedelta(days=_HANGOVER_WINDOW_DAYS)
        # Days the table does not give may be in the store already (an earlier import).
        stored = daily_demand_frame(
            store,
            china_day_start_ms(first),
            china_day_start_ms(last + timedelta(days=1)),
            {"platform": platform, "crop": crop, "region": region},
        )
        daily_kg = dict(zip(stored["day"], stored["quantity_kg"], strict=True))
        daily_kg.update({day: v.quantity_kg for day, v in days.items()})
        campaign_days = set(labels)
        for recorded in list_campaigns(
            session,
            platform_id=platform,
            crop=crop,
            region_id=region,
            source="history",
            overlapping=(first, last),
        ):
            span = (recorded.end_on - recorded.start_on).days
            campaign_days.update(recorded.start_on + timedelta(days=n) for n in range(span + 1))
        for start, end, _label in campaign_runs(labels):
            effect = measure_campaign(daily_kg, campaign_days, start, end)
            found.append(
                HistoryCampaign(
                    platform,
                    crop,
                    region,
                    start,
                    end,
                    effect.uplift,
                    effect.hangover,
                    effect.volume_kg,
                    effect.baseline_days,
                )
            )
    return found


def _describe(campaign: HistoryCampaign) -> str:
    where = f"{campaign.platform}/{campaign.crop}/{campaign.region}"
    when = f"{campaign.start}..{campaign.end}"
    if not campaign.baseline_days:
        return (
            f"campaign {where} {when}: {campaign.volume_kg:,.0f} kg; no days before it to "
            "compare with, uplift recorded as 1.0 (import earlier history to measure it)"
        )
    return (
        f"campaign {where} {when}: {campaign.volume_kg:,.0f} kg, uplift "
        f"{campaign.uplift:.2f}× over {campaign.baseline_days} days before, "
        f"hangover {campaign.hangover:.0%}"
    )


def _write_points(store: TelemetryStore, points: Iterator[Point]) -> int:
    """Write in batches; a point the store refuses is an error (the rows were checked)."""
    written = 0
    while batch := list(islice(points, _BATCH_POINTS)):
        result = store.write(batch)
        written += result.written
        if result.rejected:
            first = result.rejected[0]
            raise StoreError(
                f"the store refused {len(result.rejected)} demand point(s) after writing "
                f"{written}; first: {dict(first.point.tags)} at {first.point.time_ms}: "
                f"{first.reason} (importing the file again is safe)"
            )
    return written
