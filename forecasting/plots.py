"""Pictures of the supply/demand balance and the campaigns recommended against it.

One PNG, one panel per crop and region: supply and demand medians with their
P10-P90 bands, the campaign windows shaded, and optionally the simulated truth
dashed over the forecast. Built on :class:`matplotlib.figure.Figure` with the
Agg canvas, never ``pyplot``: pyplot keeps a global registry of open figures
and a global backend, which would leak memory in a long-running job and
change state for whoever else in the process draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, MonthLocator, date2num
from matplotlib.figure import Figure

from forecasting.frames import BALANCE_COLUMNS

if TYPE_CHECKING:
    # Only the fields are read; importing campaigns at run time would load the
    # crop catalog and the festival calendar just to draw a picture.
    from forecasting.campaigns import CampaignRecommendation

# The balance columns drawn; the probability columns are not, so a frame
# without them still plots.
_PLOTTED_COLUMNS = tuple(
    c for c in BALANCE_COLUMNS if c not in ("surplus_kg_p50", "p_surplus", "p_shortfall")
)
_ACTUAL_COLUMNS = ("crop", "region", "week", "kg")

_KG_PER_TONNE = 1000.0
_SUPPLY_COLOR = "tab:green"
_DEMAND_COLOR = "tab:blue"
# Campaign shades; colours are given per platform across all panels so one
# platform looks the same everywhere. Cycled if there are more platforms.
_CAMPAIGN_COLORS = ("tab:orange", "tab:purple", "tab:red", "tab:brown", "tab:pink", "tab:olive")
_WIDTH_IN = 11.0
_PANEL_HEIGHT_IN = 3.2
_TITLE_HEIGHT_IN = 0.5
_DPI = 100
# About a dozen month ticks fit the width; longer horizons tick every few months.
_MAX_MONTH_TICKS = 12


def plot_supply_demand(
    balance: pd.DataFrame,
    campaigns: Sequence[CampaignRecommendation],
    path: Path,
    *,
    title: str | None = None,
    actual_supply: pd.DataFrame | None = None,
    actual_demand: pd.DataFrame | None = None,
) -> Path:
    """Draw ``balance`` and ``campaigns`` to a PNG at ``path`` and return ``path``.

    ``balance`` has the balance columns (``forecasting.frames.BALANCE_COLUMNS``;
    only crop, region, week and the supply and demand quantiles are needed).
    Each (crop, region) gets a panel, stacked in crop and region order, in
    tonnes per week. Campaigns are shaded over their days (end included) in
    the panel of their crop and region; campaigns for a series not in
    ``balance`` are not drawn. ``actual_supply`` and ``actual_demand`` are
    weekly frames with columns crop, region, week, kg (rows of one week are
    summed, so per-platform demand can be passed as is), drawn dashed.

    Parent directories of ``path`` are created. The file carries no software
    or time stamp, so the same inputs give the same bytes.

    Raises ``ValueError`` if ``balance`` is empty or a frame lacks columns.
    """
    if balance.empty:
        raise ValueError("balance is empty: there is no crop and region to plot")
    _check_columns(balance, _PLOTTED_COLUMNS, "balance")
    if actual_supply is not None:
        _check_columns(actual_supply, _ACTUAL_COLUMNS, "actual_supply")
    if actual_demand is not None:
        _check_columns(actual_demand, _ACTUAL_COLUMNS, "actual_demand")

    frame = _with_timestamps(balance)
    supply_truth = None if actual_supply is None else _with_timestamps(actual_supply)
    demand_truth = None if actual_demand is None else _with_timestamps(actual_demand)
    series = sorted(set(zip(frame["crop"], frame["region"], strict=True)))
    platform_colors = _platform_colors(campaigns)

    height_in = _PANEL_HEIGHT_IN * len(series) + (_TITLE_HEIGHT_IN if title else 0.0)
    fig = Figure(figsize=(_WIDTH_IN, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    try:
        axes = fig.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (crop, region) in zip(axes, series, strict=True):
            rows = frame[(frame["crop"] == crop) & (frame["region"] == region)]
            _draw_panel(ax, crop, region, rows.sort_values("week"))
            _draw_campaigns(
                ax,
                [c for c in campaigns if (c.crop, c.region) == (crop, region)],
                platform_colors,
            )
            if supply_truth is not None:
                _draw_actual(ax, supply_truth, crop, region, "supply", _SUPPLY_COLOR)
            if demand_truth is not None:
                _draw_actual(ax, demand_truth, crop, region, "demand", _DEMAND_COLOR)
            # Beside the panel, not on it: inside, it hides the harvest's first weeks.
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        _format_dates(axes[-1], frame["week"])
        if title:
            fig.suptitle(title)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Software is matplotlib's only default PNG text chunk; dropping it keeps
        # the bytes independent of the installed version.
        fig.savefig(path, format="png", metadata={"Software": None})
    finally:
        # The figure belongs to no registry; clearing drops the artists (and
        # their copies of the data) now rather than at the next GC cycle.
        fig.clear()
    return path


def _check_columns(frame: pd.DataFrame, columns: tuple[str, ...], kind: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{kind} frame lacks columns {missing}")


def _with_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    # Weeks may arrive as datetime.date, Timestamp or ISO strings; one dtype
    # makes the date axis and the per-series filters behave the same for all.
    out = frame.copy()
    out["week"] = pd.to_datetime(out["week"])
    out["crop"] = out["crop"].astype(str)
    out["region"] = out["region"].astype(str)
    return out


def _platform_colors(campaigns: Sequence[CampaignRecommendation]) -> dict[str, str]:
    platforms = sorted({c.platform for c in campaigns})
    return {p: _CAMPAIGN_COLORS[i % len(_CAMPAIGN_COLORS)] for i, p in enumerate(platforms)}


def _draw_panel(ax: Axes, crop: str, region: str, rows: pd.DataFrame) -> None:
    # Weekly kilograms are drawn at the week's Monday.
    weeks = rows["week"].to_numpy()
    for kind, color in (("supply", _SUPPLY_COLOR), ("demand", _DEMAND_COLOR)):
        p10, p50, p90 = (
            rows[f"{kind}_kg_{q}"].to_numpy(dtype=float) / _KG_PER_TONNE
            for q in ("p10", "p50", "p90")
        )
        ax.fill_between(
            weeks, p10, p90, color=color, alpha=0.2, linewidth=0, label=f"{kind} P10–P90"
        )
        ax.plot(weeks, p50, color=color, linewidth=1.8, label=f"{kind} P50")
    ax.set_title(f"{crop} · {region}")
    ax.set_ylabel("tonnes / week")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)


def _draw_campaigns(
    ax: Axes, campaigns: Sequence[CampaignRecommendation], colors: dict[str, str]
) -> None:
    labelled: set[str] = set()
    for campaign in sorted(campaigns, key=lambda c: (c.start, c.platform)):
        # One legend entry per platform and panel, however many windows it runs;
        # matplotlib leaves out labels starting with an underscore.
        label = "_campaign" if campaign.platform in labelled else campaign.platform_name
        labelled.add(campaign.platform)
        ax.axvspan(
            _date_number(campaign.start),
            # The end day is a campaign day: the shade runs to its midnight.
            _date_number(campaign.end + timedelta(days=1)),
            color=colors[campaign.platform],
            alpha=0.15,
            linewidth=0,
            label=label,
        )


def _draw_actual(
    ax: Axes, actual: pd.DataFrame, crop: str, region: str, kind: str, color: str
) -> None:
    rows = actual[(actual["crop"] == crop) & (actual["region"] == region)]
    if rows.empty:
        return
    weekly_kg = rows.groupby("week")["kg"].sum().sort_index()
    ax.plot(
        weekly_kg.index.to_numpy(),
        weekly_kg.to_numpy(dtype=float) / _KG_PER_TONNE,
        color=color,
        linestyle="--",
        linewidth=1.2,
        label=f"{kind} (simulated truth)",
    )


def _format_dates(ax: Axes, weeks: pd.Series) -> None:
    # Axes share x, so formatting the bottom one formats them all.
    first, last = weeks.min(), weeks.max()
    months = (last.year - first.year) * 12 + (last.month - first.month) + 1
    ax.xaxis.set_major_locator(MonthLocator(interval=max(1, math.ceil(months / _MAX_MONTH_TICKS))))
    ax.xaxis.set_major_formatter(DateFormatter("%b %Y"))


def _date_number(day: date) -> float:
    # axvspan is typed for floats: give it matplotlib's own date number (days
    # since its epoch), which is what a datetime would be converted to anyway.
    return float(date2num(datetime(day.year, day.month, day.day)))
