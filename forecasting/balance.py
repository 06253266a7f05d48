"""Supply against demand per crop, region and week, with the odds of a surplus. Pure.

**Distributions from quantiles.** Every supply and demand row gives P10, P50
and P90. Each row is read as a two-piece ("split") normal: the median P50,
one standard deviation ``(P50 - P10) / z90`` below it and ``(P90 - P50) / z90``
above it, so the row's three quantiles are reproduced exactly and a skewed
forecast stays skewed. Quantiles that cross are sorted first; draws are
clipped at 0 kg (there is no negative harvest or order).

**Monte Carlo with a fixed seed.** ``n_draws`` joint draws per row, through a
Gaussian copula:

* supply of one crop and region is correlated across weeks
  (:data:`SUPPLY_WEEK_CORRELATION`): it is one harvest spread over weeks, and
  a yield miss moves every week of it together;
* demand is correlated across weeks and platforms
  (:data:`DEMAND_CORRELATION`): platforms share the season, festivals and
  price, but each has its own shoppers;
* supply and demand errors are independent of each other.

Demand is summed over platforms draw by draw, so its P10/P90 are those of the
total, not sums of the platforms' quantiles.

**Stock carried within shelf life** (``carry_stock=True``, the default). A
week's unsold produce is not lost at once: it is stored and sold in later
weeks, oldest first (FIFO), until its shelf life (the catalog's
``shelf_life_days``, in whole weeks) runs out; stored produce shrinks by the
crop's ``postharvest_loss_per_week``. So a glut shows as a surplus that
persists for the weeks it sits in store, and a later shortfall is covered
from store. What is modelled, per draw, week by week:

1. the week's harvest joins the store as the newest lot;
2. the week's demand is served from the oldest lot first;
3. a lot that reaches the end of its shelf life unsold spoils at week's end;
4. what remains shrinks by the weekly post-harvest loss.

``surplus_kg_p50`` is then the median of the week's closing position: stock
left in store at the end of the week, or, when negative, the demand the week
could not serve. With ``carry_stock=False`` it is the median of this week's
supply minus demand, as if nothing kept. Weeks missing between a series' first
and last week are filled with zero supply and demand (stock still ages
through them), so the output has every week of the range.

**Surplus or shortfall.** ``p_surplus`` is the probability that the position
exceeds :data:`BALANCED_BAND_SHARE` of the week's median demand,
``p_shortfall`` that it falls below minus that band; in between the week is
balanced, so the two need not add to one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from agrimatch.agronomy import CROPS, CropSpec
from forecasting.frames import BALANCE_COLUMNS, DEMAND_COLUMNS, SUPPLY_COLUMNS

Z90 = 1.2815515655446004  # standard normal 90th percentile
# A harvest is one quantity spread over weeks: its weekly errors move together.
SUPPLY_WEEK_CORRELATION = 0.9
# Platforms and weeks share season, festivals and price, not every shopper.
DEMAND_CORRELATION = 0.5
# A position within ±5 % of the week's median demand counts as balanced: forecast
# noise, not a surplus or shortfall anyone should act on.
BALANCED_BAND_SHARE = 0.05
N_DRAWS = 2000
DAYS_PER_WEEK = 7

_QUANTILES = ("p10", "p50", "p90")
_SERIES = ["crop", "region"]


@dataclass(frozen=True, slots=True, eq=False)
class StockFlows:
    """Per-period flows of a store sold first in, first out (arrays shaped like the demand).

    ``sold_kg`` served demand, ``spoiled_kg`` reached the end of shelf life
    unsold at the end of the period, ``shrink_kg`` was lost to post-harvest
    loss in the period, ``stock_kg`` is left at the end of the period (after
    spoilage, before shrink), ``unmet_kg`` is demand the period could not serve.
    """

    sold_kg: NDArray[np.float64]
    spoiled_kg: NDArray[np.float64]
    shrink_kg: NDArray[np.float64]
    stock_kg: NDArray[np.float64]
    unmet_kg: NDArray[np.float64]

    @property
    def position_kg(self) -> NDArray[np.float64]:
        """Closing position: stock left, or minus the demand left unserved."""
        return np.asarray(self.stock_kg - self.unmet_kg, dtype=np.float64)


def carry_stock(
    supply_kg: NDArray[np.float64],
    demand_kg: NDArray[np.float64],
    shelf_periods: int,
    loss_per_period: float = 0.0,
) -> StockFlows:
    """Sell a harvest first in, first out, with spoilage after ``shelf_periods`` periods.

    ``supply_kg`` and ``demand_kg`` have periods on axis 0 and broadcast
    against each other on any further axes (draws, candidate campaigns), so
    one call simulates many paths. A lot harvested in period *t* can be sold in
    periods *t* … *t + shelf_periods - 1*; what is left of it then spoils.
    """
    if shelf_periods < 1:
        raise ValueError(f"shelf_periods must be >= 1, got {shelf_periods}")
    if not 0.0 <= loss_per_period < 1.0:
        raise ValueError(f"loss_per_period must be in [0, 1), got {loss_per_period}")
    supply, demand = np.broadcast_arrays(
        np.asarray(supply_kg, dtype=np.float64), np.asarray(demand_kg, dtype=np.float64)
    )
    n_periods, shape = supply.shape[0], supply.shape[1:]
    # lots[0] is the oldest lot; lots[-1] the newest (this period's harvest).
    lots = np.zeros((shelf_periods, *shape))
    flows = {
        name: np.zeros(supply.shape) for name in ("sold", "spoiled", "shrink", "stock", "unmet")
    }
    for t in range(n_periods):
        lots[:-1] = lots[1:]
        lots[-1] = np.maximum(supply[t], 0.0)
        want = np.maximum(demand[t], 0.0)
        before = np.cumsum(lots, axis=0) - lots  # stock in older lots than each lot
        take = np.clip(want - before, 0.0, lots)
        lots -= take
        sold = take.sum(axis=0)
        flows["sold"][t] = sold
        flows["unmet"][t] = want - sold
        flows["spoiled"][t] = lots[0]
        lots[0] = 0.0
        flows["stock"][t] = lots.sum(axis=0)
        shrink = lots * loss_per_period
        flows["shrink"][t] = shrink.sum(axis=0)
        lots -= shrink
    return StockFlows(
        sold_kg=flows["sold"],
        spoiled_kg=flows["spoiled"],
        shrink_kg=flows["shrink"],
        stock_kg=flows["stock"],
        unmet_kg=flows["unmet"],
    )


def shelf_weeks(spec: CropSpec) -> int:
    """Weeks a lot can be sold in, its harvest week included (at least one)."""
    return max(1, int(spec.shelf_life_days // DAYS_PER_WEEK))


def split_normal_draws(
    p10: NDArray[np.float64],
    p50: NDArray[np.float64],
    p90: NDArray[np.float64],
    z: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Draws of two-piece normals with the given quantiles (rows) at standard normal ``z``.

    ``z`` is shaped (rows, draws); quantiles that cross are sorted; draws are
    clipped at zero.
    """
    q = np.sort(np.stack([p10, p50, p90], axis=1).astype(np.float64), axis=1)
    low = (q[:, 1] - q[:, 0]) / Z90
    high = (q[:, 2] - q[:, 1]) / Z90
    spread = np.where(z < 0.0, z * low[:, None], z * high[:, None])
    return np.asarray(np.maximum(q[:, 1, None] + spread, 0.0), dtype=np.float64)


def balance(
    supply: pd.DataFrame,
    demand: pd.DataFrame,
    *,
    crops: Mapping[str, CropSpec] = CROPS,
    carry_stock_over: bool = True,
    n_draws: int = N_DRAWS,
    seed: int = 0,
    balanced_band_share: float = BALANCED_BAND_SHARE,
) -> pd.DataFrame:
    """Supply against demand (summed over platforms) per crop, region and week.

    ``supply`` has ``SUPPLY_COLUMNS``, ``demand`` ``DEMAND_COLUMNS``; the result
    has ``BALANCE_COLUMNS``, one row per week (Monday) of each crop and region
    from its first to its last week in either input, ordered by crop, region
    and week. Deterministic for ``seed``. See the module docstring for the model.
    """
    _check_columns(supply, SUPPLY_COLUMNS, "supply")
    _check_columns(demand, DEMAND_COLUMNS, "demand")
    supply = _with_mondays(supply, "supply")
    demand = _with_mondays(demand, "demand")
    keys = sorted(
        set(map(tuple, supply[_SERIES].astype(str).to_numpy()))
        | set(map(tuple, demand[_SERIES].astype(str).to_numpy()))
    )
    parts = []
    for crop, region in keys:
        # Draws keyed by the series, not by its place in the loop, so a what-if that
        # changes one crop leaves the others' probabilities exactly as they were.
        rng = np.random.default_rng([seed, *_stable_key(crop, region)])
        spec = crops.get(crop)
        if spec is None:
            raise ValueError(f"crop {crop!r} is not in the crop catalog")
        s_rows = supply[(supply["crop"] == crop) & (supply["region"] == region)]
        d_rows = demand[(demand["crop"] == crop) & (demand["region"] == region)]
        parts.append(
            _series_balance(
                crop,
                region,
                spec,
                s_rows,
                d_rows,
                rng,
                n_draws,
                carry_stock_over,
                balanced_band_share,
            )
        )
    if not parts:
        return _empty_balance()
    return pd.concat(parts, ignore_index=True).loc[:, list(BALANCE_COLUMNS)]


def _series_balance(
    crop: str,
    region: str,
    spec: CropSpec,
    supply: pd.DataFrame,
    demand: pd.DataFrame,
    rng: np.random.Generator,
    n_draws: int,
    carry: bool,
    band_share: float,
) -> pd.DataFrame:
    all_weeks = [*supply["week"], *demand["week"]]
    first, last = min(all_weeks), max(all_weeks)
    weeks = [first + timedelta(days=DAYS_PER_WEEK * k) for k in range((last - first).days // 7 + 1)]
    index = {week: k for k, week in enumerate(weeks)}
    n_weeks = len(weeks)

    supply_q = _weekly_quantiles(supply, "supply", index, n_weeks)
    supply_draws = np.zeros((n_weeks, n_draws))
    if len(supply):
        supply_z = _correlated_normals(rng, len(supply), n_draws, SUPPLY_WEEK_CORRELATION)
        rows = split_normal_draws(*_columns(supply, "supply"), supply_z)
        np.add.at(supply_draws, supply["week"].map(index).to_numpy(), rows)

    demand_draws = np.zeros((n_weeks, n_draws))
    if len(demand):
        demand_z = _correlated_normals(rng, len(demand), n_draws, DEMAND_CORRELATION)
        rows = split_normal_draws(*_columns(demand, "demand"), demand_z)
        np.add.at(demand_draws, demand["week"].map(index).to_numpy(), rows)

    if carry:
        flows = carry_stock(
            supply_draws, demand_draws, shelf_weeks(spec), spec.postharvest_loss_per_week
        )
        position = flows.position_kg
    else:
        position = supply_draws - demand_draws
    demand_q = np.quantile(demand_draws, [0.1, 0.5, 0.9], axis=1)
    band = band_share * demand_q[1][:, None]
    frame = pd.DataFrame(
        {
            "crop": crop,
            "region": region,
            "week": weeks,
            "supply_kg_p10": supply_q[0],
            "supply_kg_p50": supply_q[1],
            "supply_kg_p90": supply_q[2],
            "demand_kg_p10": demand_q[0],
            "demand_kg_p50": demand_q[1],
            "demand_kg_p90": demand_q[2],
            "surplus_kg_p50": np.median(position, axis=1),
            "p_surplus": (position > band).mean(axis=1),
            "p_shortfall": (position < -band).mean(axis=1),
        }
    )
    return frame


def _weekly_quantiles(
    rows: pd.DataFrame, kind: str, index: Mapping[date, int], n_weeks: int
) -> NDArray[np.float64]:
    """The input quantiles per week (summed when a week has several rows; 0 where none)."""
    out = np.zeros((3, n_weeks))
    if len(rows):
        positions = rows["week"].map(index).to_numpy()
        for k, values in enumerate(_columns(rows, kind)):
            np.add.at(out[k], positions, values)
    return out


def _columns(
    rows: pd.DataFrame, kind: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    p10, p50, p90 = (rows[f"{kind}_kg_{q}"].to_numpy(dtype=np.float64) for q in _QUANTILES)
    return p10, p50, p90


def _correlated_normals(
    rng: np.random.Generator, n_rows: int, n_draws: int, correlation: float
) -> NDArray[np.float64]:
    """Standard normals (rows, draws), any two rows correlated by ``correlation``."""
    # One common factor plus an own term: the equicorrelated Gaussian copula.
    common = rng.standard_normal((1, n_draws))
    own = rng.standard_normal((n_rows, n_draws))
    return np.asarray(
        np.sqrt(correlation) * common + np.sqrt(1.0 - correlation) * own, dtype=np.float64
    )


def _stable_key(*parts: str) -> tuple[int, int]:
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:], "big")


def _with_mondays(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    out = frame.copy()
    out["week"] = [pd.Timestamp(w).date() for w in out["week"]]
    out["crop"] = out["crop"].astype(str)
    out["region"] = out["region"].astype(str)
    not_monday = [w for w in out["week"] if w.weekday() != 0]
    if not_monday:
        raise ValueError(f"{kind}: weeks are named by their Monday; {not_monday[0]} is not one")
    return out


def _check_columns(frame: pd.DataFrame, columns: tuple[str, ...], kind: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{kind} frame lacks columns {missing}")


def _empty_balance() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in BALANCE_COLUMNS})
    return frame.astype({"crop": "object", "region": "object", "week": "object"})
