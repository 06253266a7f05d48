"""How the ``forecast`` commands present results: rich tables, JSON and CSV.

Presentation only: everything shown comes from :class:`forecasting.results.ForecastResults`
(a stored run read back) or a :class:`forecasting.whatif.WhatIf`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from forecasting.results import CampaignResult, ForecastResults
from forecasting.whatif import WhatIf
from forecasting.yield_model import MIN_TRUSTED_SEASONS

CSV_TABLES = ("campaigns", "planting", "balance", "fields", "supply", "demand")


def wide(console: Console) -> Console:
    """``console``, or a wide one when output goes to a file or a pipe (rich would wrap
    the tables at 80 columns there)."""
    return console if console.is_terminal else Console(width=160)


def print_results(results: ForecastResults, out: Console, limit: int = 20) -> None:
    """The answer first (campaigns by date, planting per farm), then supply against demand
    and the field forecasts; each table cut at ``limit`` rows with a note of the rest."""
    out.print(
        f"[bold]forecast as of {results.as_of}[/] (run {results.run_id}, model "
        f"{results.model_version}): {len(results.fields)} field-seasons, "
        f"{len(results.campaigns)} campaigns, {len(results.planting)} planting changes",
        highlight=False,
    )
    interval_warning(results, out)
    _campaigns(results, out, limit)
    _planting(results, out, limit)
    _balance(results, out, limit)
    _fields(results, out, limit)


def interval_warning(results: ForecastResults, out: Console) -> None:
    """Warn, per crop, when the yield intervals rest on too few harvested seasons."""
    few: dict[str, set[int]] = {}
    for f in results.fields:
        if f.interval_trust == "few_seasons":
            few.setdefault(f.crop, set()).add(f.training_seasons or 0)
    if not few:
        return
    crops = ", ".join(
        f"{crop} ({'/'.join(str(n) for n in sorted(seasons))})"
        for crop, seasons in sorted(few.items())
    )
    out.print(
        f"[yellow]warning:[/] the yield P10–P90 of {crops} rests on too few harvested seasons "
        f"(in brackets) to be trusted: read it as rough until {MIN_TRUSTED_SEASONS} seasons "
        "of the crop are recorded (agrimatch import harvests)",
        highlight=False,
    )


def print_answer(results: ForecastResults, out: Console, limit: int = 5) -> None:
    """The answer alone: the campaigns to organise and the planting changes, briefly."""
    out.print(
        f"[bold]the answer, as of {results.as_of}[/] (model {results.model_version})",
        highlight=False,
    )
    interval_warning(results, out)
    _campaigns(results, out, limit)
    _planting(results, out, limit)


def _campaigns(results: ForecastResults, out: Console, limit: int) -> None:
    if not results.campaigns:
        out.print("no campaign recommended: no projected surplus would spoil unsold")
        return
    table = Table(title="campaigns to organise, by date", title_justify="left")
    for column in ("when", "platform", "crop", "region", "sells t", "saves t", "saves CNY"):
        table.add_column(column, justify="right" if column.startswith("s") else "left")
    table.add_column("why", ratio=1)
    for c in results.campaigns[:limit]:
        table.add_row(
            f"{c.start:%Y-%m-%d} – {c.end:%m-%d}",
            c.platform_name,
            c.crop,
            c.region,
            f"{c.target_kg / 1000:,.0f}",
            f"{c.expected_absorbed_kg / 1000:,.0f}",
            "?" if math.isnan(c.value_saved_cny) else f"{c.value_saved_cny:,.0f}",
            _campaign_why(c),
        )
    out.print(table)
    _more(out, len(results.campaigns), limit, "campaigns")


def _campaign_why(campaign: CampaignResult) -> str:
    """The surplus the campaign is for, and the festival it meets (the rest: --json)."""
    parts = []
    if campaign.spoils_from is not None and not math.isnan(campaign.surplus_at_risk_kg):
        parts.append(
            f"{campaign.surplus_at_risk_kg / 1000:,.0f} t would spoil unsold from "
            f"{campaign.spoils_from}"
        )
    parts.extend(r for r in campaign.reasons if r.startswith("overlaps"))
    return "; ".join(parts) or (campaign.reasons[0] if campaign.reasons else "")


def _planting(results: ForecastResults, out: Console, limit: int) -> None:
    if not results.planting:
        reason = results.planting_error or "no planting plan was made"
        out.print(f"[yellow]no planting plan:[/] {reason}", highlight=False)
        return
    regional = Table(title="next season's planting, per crop and region", title_justify="left")
    columns = ("crop", "region", "now ha", "next ha", "change", "model price", "observed")
    for column in (*columns, "margin CNY"):
        regional.add_column(column, justify="left" if column in ("crop", "region") else "right")
    for p in results.planting[:limit]:
        regional.add_row(
            p.crop,
            p.region,
            f"{p.current_ha:,.1f}",
            f"{p.recommended_ha:,.1f}",
            f"{p.change_ha:+,.1f}",
            f"{p.expected_price_cny_per_kg_before:.2f} → {p.expected_price_cny_per_kg_after:.2f}",
            "—" if p.observed_price_cny_per_kg is None else f"{p.observed_price_cny_per_kg:.2f}",
            f"{p.expected_margin_cny_before:,.0f} → {p.expected_margin_cny_after:,.0f}",
        )
    out.print(regional)
    _more(out, len(results.planting), limit, "crops and regions")
    # The farms that move are the advice; the rest keep their area.
    farms = sorted(
        ((p, f) for p in results.planting for f in p.farms if abs(f.change_ha) >= 0.005),
        key=lambda pf: -abs(pf[1].change_ha),
    )
    if not farms:
        out.print("every farm keeps its area of every crop")
        return
    table = Table(title="farms that change, largest change first", title_justify="left")
    for column in ("farm", "crop", "now ha", "next ha", "change"):
        table.add_column(column, justify="left" if column in ("farm", "crop") else "right")
    table.add_column("why", ratio=1)
    for p, f in farms[:limit]:
        table.add_row(
            f.farm,
            p.crop,
            f"{f.current_ha:,.2f}",
            f"{f.recommended_ha:,.2f}",
            f"{f.change_ha:+,.2f}",
            "; ".join(f.reasons or f.binding),
        )
    out.print(table)
    _more(out, len(farms), limit, "farm changes")
    kept = sum(len(p.farms) for p in results.planting) - len(farms)
    if kept:
        out.print(f"{kept} farm-crops keep their area (--json or --csv --table planting: why)")


def _balance(results: ForecastResults, out: Console, limit: int) -> None:
    # The weeks that matter: the harvest comes in (after it, the balance is the stock).
    weeks = [b for b in results.balance if b.supply_kg_p50 >= 100.0]
    if not weeks:
        out.print("supply vs demand: no harvest of a crop the platforms sell within the horizon")
        return
    table = Table(title="supply vs demand per week (t, P50 with P10–P90)", title_justify="left")
    for column in ("week", "crop", "region"):
        table.add_column(column)
    for column in ("supply", "demand", "in store", "P(surplus)"):
        table.add_column(column, justify="right")
    for b in weeks[:limit]:
        table.add_row(
            str(b.week),
            b.crop,
            b.region,
            _band(b.supply_kg_p10, b.supply_kg_p50, b.supply_kg_p90),
            _band(b.demand_kg_p10, b.demand_kg_p50, b.demand_kg_p90),
            f"{b.surplus_kg_p50 / 1000:+,.1f}",
            f"{b.p_surplus:.0%}",
        )
    out.print(table)
    _more(out, len(weeks), limit, "weeks")


def _fields(results: ForecastResults, out: Console, limit: int) -> None:
    table = Table(title="yield and harvest per field", title_justify="left")
    for column in ("farm", "field", "crop", "yield t/ha P50 (P10–P90)", "harvest P50 (P10–P90)"):
        table.add_column(column)
    table.add_column("drivers", ratio=1)
    for f in results.fields[:limit]:
        window = f"{f.harvest_p50} ({_short(f.harvest_p10)}–{_short(f.harvest_p90)})"
        drivers = ", ".join(f"{d.feature} {d.effect_t_ha:+.1f}" for d in f.drivers[:3])
        table.add_row(
            f.farm,
            f.field,
            f.crop,
            f"{f.yield_t_ha_p50:.1f} ({f.yield_t_ha_p10:.1f}–{f.yield_t_ha_p90:.1f})"
            + (" rough" if f.interval_trust == "few_seasons" else ""),
            window,
            # Sown garlic without telemetry since and next season's crops alike.
            drivers or "(no telemetry yet: the crop's past yields here)",
        )
    out.print(table)
    _more(out, len(results.fields), limit, "fields")


def _band(p10: float, p50: float, p90: float) -> str:
    return f"{p50 / 1000:,.1f} ({p10 / 1000:,.1f}–{p90 / 1000:,.1f})"


def _short(day: date | None) -> str:
    return "?" if day is None else f"{day:%m-%d}"


def _more(out: Console, total: int, limit: int, what: str) -> None:
    if total > limit:
        out.print(f"… and {total - limit} more {what} (--limit, --json or --csv for all)")


def results_json(results: ForecastResults) -> str:
    """The whole run as JSON: dates ISO, NaN as null."""
    return json.dumps(_jsonable(asdict(results)), indent=2, allow_nan=False)


def results_csv(results: ForecastResults, table: str) -> str:
    """One of :data:`CSV_TABLES` as CSV; planting one row per farm, reasons joined by "; "."""
    rows: Iterable[dict[str, Any]]
    if table == "planting":
        rows = (
            {
                "crop": p.crop,
                "region": p.region,
                "farm": f.farm,
                "current_ha": f.current_ha,
                "recommended_ha": f.recommended_ha,
                "change_ha": round(f.change_ha, 2),
                "binding": "; ".join(f.binding),
                "reasons": "; ".join(f.reasons),
            }
            for p in results.planting
            for f in p.farms
        )
    else:
        rows = (asdict(r) for r in getattr(results, table))
    return _csv([_flat(r) for r in rows])


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, list | tuple):
            value = "; ".join(
                f"{v['feature']} {v['effect_t_ha']:+.3f}" if isinstance(v, dict) else str(v)
                for v in value
            )
        out[key] = value
    return out


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_what_if(result: WhatIf, as_of: date, out: Console) -> None:
    """Per crop and region, the surplus before → after; then the changed plan's campaigns."""
    table = Table(title=f"what if, as of {as_of} (nothing saved)", title_justify="left")
    for column in ("crop", "region", "peak surplus t", "spoils t", "value at risk CNY",
                   "campaigns"):  # fmt: skip
        table.add_column(column)
    compared = result.comparison()

    def moved(column: str, scale: float = 1.0) -> list[str]:
        pairs = zip(compared[f"{column}_before"], compared[f"{column}_after"], strict=True)
        return [f"{a / scale:,.0f} → {b / scale:,.0f}" for a, b in pairs]

    columns = [
        moved("peak_surplus_kg_p50", 1000),
        moved("surplus_at_risk_kg", 1000),
        moved("value_at_risk_cny"),
        moved("campaigns"),
    ]
    for k, (crop, region) in enumerate(zip(compared["crop"], compared["region"], strict=True)):
        table.add_row(str(crop), str(region), *(column[k] for column in columns))
    out.print(table)
    campaigns = sorted(result.changed.campaigns, key=lambda c: c.start)
    if campaigns:
        changed = Table(title="campaigns of the changed plan, by date", title_justify="left")
        for column in ("when", "platform", "crop", "region", "sells t", "saves CNY"):
            changed.add_column(column)
        for c in campaigns:
            changed.add_row(
                f"{c.start:%Y-%m-%d} – {c.end:%m-%d}",
                c.platform_name,
                c.crop,
                c.region,
                f"{c.target_kg / 1000:,.0f}",
                f"{c.value_saved_cny:,.0f}",
            )
        out.print(changed)
