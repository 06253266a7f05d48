"""What if the plan or the weather were different: recomputed, never saved. Pure.

A what-if takes a field plan (rows of ``FIELD_SEASON_COLUMNS``), applies a
:class:`PlanChange` (areas scaled or set, crops swapped, planting dates
shifted, a weather scenario named), forecasts the changed fields with a
:data:`FieldModel` and ends where the scheduled forecast ends:
:func:`forecasting.recommend.outlook` gives the supply, the balance and the
recommendations in the same :class:`~forecasting.recommend.Market`. The
field model is a callable, so a what-if runs on the fitted yield and harvest
models in production (:mod:`forecasting.chain_whatif`) and on a toy in a
test; nothing here reads or writes a store. The result holds the baseline and
the changed outlook side by side, with :func:`surplus_summary` to compare them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from forecasting.recommend import Market, Outlook, outlook

FieldModel = Callable[[pd.DataFrame, str | None], pd.DataFrame]
"""``(field plan, weather scenario or None) -> field forecasts``: the plan's rows with
yield quantiles and a harvest window each (what :func:`~forecasting.recommend.outlook` takes)."""

FieldKey = tuple[str, str]  # (farm, field)


@dataclass(frozen=True, slots=True)
class PlanChange:
    """Changes to a field plan; anything left empty stays as it is.

    Applied in order: crops swapped per field, areas set per field, areas
    scaled per crop (after the swap), planting dates shifted per crop (days,
    later when positive). ``weather`` names a weather scenario for the field
    model (e.g. ``"drought"``); None keeps the model's own outlook.
    """

    crop_by_field: Mapping[FieldKey, str] = field(default_factory=dict)
    area_ha_by_field: Mapping[FieldKey, float] = field(default_factory=dict)
    area_scale_by_crop: Mapping[str, float] = field(default_factory=dict)
    planting_shift_days_by_crop: Mapping[str, int] = field(default_factory=dict)
    weather: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class WhatIf:
    """A baseline and a changed outlook, and their surplus side by side."""

    baseline: Outlook
    changed: Outlook

    def comparison(self) -> pd.DataFrame:
        """:func:`surplus_summary` of both, joined per crop and region (``_before``/``_after``)."""
        before = surplus_summary(self.baseline)
        after = surplus_summary(self.changed)
        joined = before.merge(
            after, on=["crop", "region"], how="outer", suffixes=("_before", "_after")
        )
        return joined.fillna(0.0).sort_values(["crop", "region"], ignore_index=True)


def apply_plan_change(plan: pd.DataFrame, change: PlanChange) -> pd.DataFrame:
    """A copy of ``plan`` with ``change`` applied (the input frame is not touched)."""
    out = plan.copy()
    keys = list(zip(out["farm"].astype(str), out["field"].astype(str), strict=True))
    for column, by_field in (("crop", change.crop_by_field), ("area_ha", change.area_ha_by_field)):
        unknown = sorted(set(by_field) - set(keys))
        if unknown:
            raise ValueError(f"no field {unknown[0]} in the plan")
        if by_field:
            out[column] = [by_field.get(k, v) for k, v in zip(keys, out[column], strict=True)]
    if (out["area_ha"].astype(float) <= 0).any():
        raise ValueError("field areas must stay positive (drop a field from the plan instead)")
    grown = sorted(set(out["crop"]))
    for crop in (*change.area_scale_by_crop, *change.planting_shift_days_by_crop):
        if crop not in grown:
            # Scaling a crop nobody grows would change nothing and say nothing.
            raise ValueError(f"no field grows {crop} in the plan (it has {', '.join(grown)})")
    for crop, scale in change.area_scale_by_crop.items():
        if scale <= 0:
            raise ValueError(f"area scale for {crop} must be positive, got {scale}")
        mask = out["crop"] == crop
        out.loc[mask, "area_ha"] = out.loc[mask, "area_ha"].astype(float) * scale
    for crop, days in change.planting_shift_days_by_crop.items():
        mask = (out["crop"] == crop).to_numpy()
        shifted = [pd.Timestamp(d).date() + timedelta(days=int(days)) for d in out["planted_on"]]
        out["planted_on"] = [
            new if moved else old
            for new, old, moved in zip(shifted, out["planted_on"], mask, strict=True)
        ]
    return out


def what_if(
    plan: pd.DataFrame,
    change: PlanChange,
    field_model: FieldModel,
    market: Market,
    baseline: Outlook | None = None,
) -> WhatIf:
    """The outlook of ``plan`` and of ``plan`` with ``change``, computed and returned, not saved.

    ``baseline``, when given, is ``plan``'s outlook already computed in ``market``
    (the forecast run's own), and is not computed again.
    """
    changed_plan = apply_plan_change(plan, change)  # a bad change fails before any model runs
    if baseline is None:
        baseline = outlook(field_model(plan, None), market)
    changed = outlook(field_model(changed_plan, change.weather), market)
    return WhatIf(baseline, changed)


def surplus_summary(result: Outlook) -> pd.DataFrame:
    """Per crop and region: the peak median surplus (kg), the weeks more likely in surplus than
    not, the kilograms and value that would spoil unsold, and the campaigns recommended."""
    rows = []
    for (crop, region), weeks in result.balance.groupby(["crop", "region"], sort=True):
        mine = [c for c in result.campaigns if (c.crop, c.region) == (crop, region)]
        # Campaigns of one surplus episode share its value at risk: count each episode once.
        episodes = {(c.spoils_from, c.surplus_at_risk_kg, c.value_at_risk_cny) for c in mine}
        rows.append(
            {
                "crop": crop,
                "region": region,
                "peak_surplus_kg_p50": float(np.maximum(weeks["surplus_kg_p50"], 0.0).max()),
                "surplus_weeks": int((weeks["p_surplus"] > 0.5).sum()),
                "surplus_at_risk_kg": float(sum(e[1] for e in episodes)),
                "value_at_risk_cny": float(sum(e[2] for e in episodes)),
                "campaigns": len(mine),
            }
        )
    columns = [
        "crop",
        "region",
        "peak_surplus_kg_p50",
        "surplus_weeks",
        "surplus_at_risk_kg",
        "value_at_risk_cny",
        "campaigns",
    ]
    return pd.DataFrame(rows, columns=columns)
