"""Next season's planting area per farm and crop: a linear programme. Pure.

**What is maximised.** The farms' margin: revenue minus the cost per hectare.
A crop's price depends on how much of it the region brings to market, through
an inverse demand curve given as breakpoints (regional quantity in t → price
in CNY/kg, linear between them, flat before the first; after the last it
keeps the last segment's slope down to zero, or stays flat when the curve
ends flat). Revenue ``Q · P(Q)`` is then concave between breakpoints; the
model uses its concave majorant over a few points per segment (exact at the
points, an over-estimate only where ``Q · P(Q)`` bends the wrong way), as
pieces of falling marginal revenue. Because we maximise a concave function,
the LP fills the pieces in order with no integer or SOS variables. Produce
beyond the point where more would lower the revenue is not sold (free
disposal: it is left to rot or ploughed in), so oversupply costs the
hectares' cost and brings nothing.

**Uncertain yields.** Yields per crop and region are lognormal with the given
median (P50) and 10th percentile (P10); ``n_scenarios`` joint draws (fixed
seed) share a common weather factor with correlation ``yield_correlation``
between any two crops and regions. Each scenario sells its own quantity on
the curve, so a poor year is partly made up by a higher price.

**Risk** (``risk``):

* ``"mean"``: the expected margin over the scenarios;
* ``"p10"``: the margin when every crop yields its P10 (a stress year), with
  the prices that quantity fetches;
* ``("cvar", alpha, lam)``: ``(1 - lam) · mean + lam · CVaR_alpha``, the
  mean of the worst ``alpha`` share of scenarios (Rockafellar–Uryasev, linear).

**Constraints** (:class:`PlantingConstraints`):

* land: a farm's crops fit its land (its current area unless given);
* change: a crop's area moves by at most ``max_change_share`` of the farm's
  land per season (per crop overrides, e.g. orchards), a share of the land
  rather than of the crop's area so that a crop not yet grown can enter;
* rotation (:class:`RotationRule`): a crop on at most a share of the farm,
  and after itself (on land that grew it this season) on at most a share of
  the farm; without field maps, the land that did not grow the crop is taken
  as free for it;
* staples: maize or potato (``staple_crops``) on at least a share of each
  farm and/or a number of hectares per region.

**What changing costs.** A plan moves only where the move is worth it:

* switching: a hectare a crop gains pays a one-off switching cost
  (``switching_cost_share`` of that crop's cost per hectare, default a tenth,
  or ``switching_cost_cny_per_ha`` per crop), so a change whose gain is
  smaller is not made and the reasons say so ("kept: the gain of X CNY/ha ...
  is below the switching cost of Y CNY/ha");
* orchards (``CropEconomics.perennial``): a new hectare bears nothing next
  season (nor for ``years_to_bearing``) and costs its establishment once; a
  grubbed hectare costs its removal once. One-off costs are weighed against
  the season's gain over ``perennial_horizon_years`` discounted at
  ``discount_rate`` (a cut whose season gain ``g`` makes ``g · annuity`` less
  than the removal cost is not made), so an orchard is not cut for one poor
  season. An orchard's area moves by at most ``max_perennial_change_share``
  of the farm's land a season (5 % by default: orchards are renewed a little
  each year), and the reasons say when that binds;
* idle land: every crop's total cost includes the land's rent (paid or
  imputed), which idle land still pays (``land_rent_cny_per_ha``); so land
  goes idle only when no crop covers its cost but the rent (or the one that
  would does not cover its switching cost), and each such farm's reasons say
  which. ``keep_land_planted`` forbids any more idle land than there is now.

A rotation or staple rule that the change limit does not let a farm reach in
one season is met as far as the change limit allows (the change limit is the
hard one: seed, labour and contracts are fixed a season ahead); the reasons
say so. Crops a farm grows with no economics for its region are held as they
are.

**Why a recommendation.** From the LP's duals and slacks: a farm's land
row, staple row or a crop's bounds that are tight are reported as binding
constraints, and the dual of a crop's regional area is its marginal value:
what the last hectare earns (risk-adjusted, at the recommended regional
supply) against what it costs. Before/after margins are evaluated on the
true curve (not the LP's pieces) over the same scenarios.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import OptimizeResult, linprog

Z90 = 1.2815515655446004  # standard normal 90th percentile
KG_PER_T = 1000.0
# Points per breakpoint segment at which Q·P(Q) is evaluated for the LP's pieces:
# Q·P(Q) is a parabola on each segment; eight chords keep it within ~0.2 %.
_POINTS_PER_SEGMENT = 8
# Far end of a curve that ends flat: the price holds however much comes.
_FLAT_TAIL_FACTOR = 1000.0

Risk = Literal["mean", "p10"] | tuple[str, float, float]


@dataclass(frozen=True, slots=True)
class CropEconomics:
    """A crop in a region: yields, cost and the price the region's quantity fetches.

    ``price_curve`` is ``((quantity_t, price_cny_per_kg), ...)`` with
    quantities increasing and prices not increasing.
    """

    crop: str
    region: str
    yield_t_ha_p10: float
    yield_t_ha_p50: float
    cost_cny_per_ha: float
    price_curve: tuple[tuple[float, float], ...]
    # Orchards: a new hectare bears nothing next season (nor for years_to_bearing) and
    # costs establishment_cost once; grubbing one costs removal_cost once.
    perennial: bool = False
    establishment_cost_cny_per_ha: float = 0.0
    removal_cost_cny_per_ha: float = 0.0
    years_to_bearing: int = 0
    # The price the platforms observed (the curve's anchor), shown beside the model's;
    # None when the crop is priced from the catalog.
    observed_price_cny_per_kg: float | None = None

    def __post_init__(self) -> None:
        where = f"economics {self.crop}/{self.region}"
        if min(self.establishment_cost_cny_per_ha, self.removal_cost_cny_per_ha) < 0:
            raise ValueError(f"{where}: establishment and removal costs must be >= 0")
        if self.years_to_bearing < 0:
            raise ValueError(f"{where}: years_to_bearing must be >= 0")
        if not 0.0 <= self.yield_t_ha_p10 <= self.yield_t_ha_p50 or self.yield_t_ha_p50 <= 0:
            raise ValueError(f"{where}: need 0 <= yield P10 <= P50 and P50 > 0")
        if self.cost_cny_per_ha < 0:
            raise ValueError(f"{where}: cost must be >= 0")
        if not self.price_curve:
            raise ValueError(f"{where}: empty price curve")
        quantities = [q for q, _ in self.price_curve]
        prices = [p for _, p in self.price_curve]
        if any(b <= a for a, b in itertools.pairwise(quantities)) or min(quantities) < 0:
            raise ValueError(f"{where}: curve quantities must be >= 0 and increasing")
        if any(b > a for a, b in itertools.pairwise(prices)) or min(prices) < 0:
            raise ValueError(f"{where}: curve prices must be >= 0 and not increasing")


def linear_price_curve(
    reference_t: float, reference_price_cny_per_kg: float, elasticity: float
) -> tuple[tuple[float, float], ...]:
    """A linear inverse demand through ``(reference_t, reference_price)`` with the given point
    elasticity there (negative); the price reaches zero at ``reference_t · (1 - elasticity)``."""
    if elasticity >= 0 or reference_t <= 0 or reference_price_cny_per_kg <= 0:
        raise ValueError("need a negative elasticity and a positive reference point")
    # P(Q) = p·(1 + (Q/Q0 - 1)/ε): slope p/(ε·Q0), so (dQ/dP)·(P/Q) = ε at the reference.
    at_zero = reference_price_cny_per_kg * (1.0 - 1.0 / elasticity)
    return ((0.0, at_zero), (reference_t * (1.0 - elasticity), 0.0))


@dataclass(frozen=True, slots=True)
class RotationRule:
    """Shares of a farm's land: ``crop`` on at most ``max_share_of_farm``, and following
    itself (on land it grew this season) on at most ``max_repeat_share_of_farm``."""

    crop: str
    max_share_of_farm: float = 1.0
    max_repeat_share_of_farm: float = 1.0


# A hectare turned to a crop it did not grow pays for the change: seed and inputs bought
# anew, tools or services hired, buyers and contracts found, a first season's learning.
# An estimate, not a measurement: a tenth of the incoming crop's season cost.
DEFAULT_SWITCHING_COST_SHARE = 0.1
# What an idle hectare still costs: its rent, paid or imputed, which every crop's total
# cost (NDRC basis) includes. NDRC-cost-benefit, maize: land cost ~230-250 CNY/mu in
# 2018-2020 (recalled, not re-checked against the tables); x15 mu/ha.
DEFAULT_LAND_RENT_CNY_PER_HA = 3_600.0
# An orchard's change is weighed over this many seasons at this rate (estimates: about
# one price cycle of Chinese fruit and vegetables, and a rural lending rate).
DEFAULT_PERENNIAL_HORIZON_YEARS = 5
DEFAULT_DISCOUNT_RATE = 0.06
# Orchards are renewed a little each year, not replanted in one: an orchard bearing for
# 20-30 years is renewed at 3-5 % a year (estimate). So an orchard's area moves by at
# most 5 % of the farm's land a season, whatever one season's prices say.
DEFAULT_MAX_PERENNIAL_CHANGE_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class PlantingConstraints:
    """The rules a plan keeps and what changing it costs (see the module docstring)."""

    land_ha: Mapping[str, float] | None = None  # farm -> land; None: its current area
    max_change_share: float = 0.2
    max_change_share_by_crop: Mapping[str, float] = field(default_factory=dict)
    rotation: tuple[RotationRule, ...] = ()
    staple_crops: tuple[str, ...] = ("maize", "potato")
    min_staple_share_per_farm: float = 0.0
    min_staple_ha_per_region: Mapping[str, float] = field(default_factory=dict)
    # Switching cost per hectare a crop gains: this share of its cost per hectare, unless
    # switching_cost_cny_per_ha names the crop.
    switching_cost_share: float = DEFAULT_SWITCHING_COST_SHARE
    switching_cost_cny_per_ha: Mapping[str, float] = field(default_factory=dict)
    land_rent_cny_per_ha: float = DEFAULT_LAND_RENT_CNY_PER_HA
    keep_land_planted: bool = False  # True: no farm leaves more land idle than it does now
    perennial_horizon_years: int = DEFAULT_PERENNIAL_HORIZON_YEARS
    discount_rate: float = DEFAULT_DISCOUNT_RATE
    # An orchard's area moves by at most this share of the farm's land a season, unless
    # max_change_share_by_crop names the crop (see DEFAULT_MAX_PERENNIAL_CHANGE_SHARE).
    max_perennial_change_share: float = DEFAULT_MAX_PERENNIAL_CHANGE_SHARE

    def __post_init__(self) -> None:
        if not 0.0 <= self.switching_cost_share <= 10.0:
            raise ValueError(
                f"switching_cost_share must be within [0, 10] (a share of a crop's cost per "
                f"hectare), got {self.switching_cost_share}"
            )
        bad = {c: v for c, v in self.switching_cost_cny_per_ha.items() if not v >= 0}
        if bad:
            raise ValueError(f"switching_cost_cny_per_ha must be >= 0, got {bad}")
        if not self.land_rent_cny_per_ha >= 0:
            raise ValueError(f"land_rent_cny_per_ha must be >= 0, got {self.land_rent_cny_per_ha}")
        if self.perennial_horizon_years < 1:
            raise ValueError(
                f"perennial_horizon_years must be >= 1, got {self.perennial_horizon_years}"
            )
        if not 0.0 <= self.max_perennial_change_share <= 1.0:
            raise ValueError(
                "max_perennial_change_share must be within [0, 1], got "
                f"{self.max_perennial_change_share}"
            )
        if not 0.0 <= self.discount_rate < 1.0:
            raise ValueError(f"discount_rate must be within [0, 1), got {self.discount_rate}")

    def change_share(self, crop: str, perennial: bool) -> float:
        """The share of a farm's land ``crop``'s area may move by in a season."""
        named = self.max_change_share_by_crop.get(crop)
        if named is not None:
            return float(named)
        if perennial:
            return min(self.max_change_share, self.max_perennial_change_share)
        return self.max_change_share

    def switching_cost(self, economics: CropEconomics) -> float:
        """CNY per hectare ``economics.crop`` gains (an orchard's is its establishment)."""
        if economics.perennial:
            return economics.establishment_cost_cny_per_ha
        override = self.switching_cost_cny_per_ha.get(economics.crop)
        if override is not None:
            return float(override)
        return self.switching_cost_share * economics.cost_cny_per_ha

    @property
    def annuity_factor(self) -> float:
        """Seasons of the horizon discounted to now (the first undiscounted)."""
        r, n = self.discount_rate, self.perennial_horizon_years
        return float(sum((1.0 + r) ** -t for t in range(n)))


@dataclass(frozen=True, slots=True, eq=False)
class PlantingPlan:
    """A recommended plan.

    ``farms``: one row per farm and crop with ``farm, region, crop,
    current_ha, recommended_ha, change_ha, expected_margin_cny_before,
    expected_margin_cny_after, binding`` (names of the tight constraints) and
    ``reasons`` (sentences), and the farm's idle hectares before and after.
    ``regions``: per region and crop, areas, expected quantity (t), the
    model's expected price (CNY/kg) and expected margin, before and after, and
    the price the platforms observed (``observed_price_cny_per_kg``, NaN when
    the crop was priced from the catalog). ``summary``: the whole plan's
    expected margin (idle land charged its rent), P10 margin and CVaR (at
    ``cvar_alpha``) before and after, over the yield scenarios; idle hectares
    before and after; and the one-off costs of the change (switching,
    establishment, removal).
    """

    farms: pd.DataFrame
    regions: pd.DataFrame
    summary: dict[str, float]
    risk: str
    status: str
    solve_seconds: float
    build_seconds: float
    n_variables: int
    n_constraints: int


class PlantingInfeasible(ValueError):
    """The constraints admit no plan; the message says which farm or rule."""


def recommend_planting(
    current: pd.DataFrame,
    economics: Sequence[CropEconomics],
    constraints: PlantingConstraints | None = None,
    risk: Risk = "mean",
    *,
    n_scenarios: int = 40,
    yield_correlation: float = 0.5,
    seed: int = 0,
) -> PlantingPlan:
    """Next season's area per farm and crop maximising margin under ``risk``.

    ``current`` has ``farm, region, crop, area_ha`` (this season; several rows
    of a farm and crop add up). ``economics`` gives one :class:`CropEconomics`
    per crop and region a farm may grow. See the module docstring.
    """
    constraints = constraints or PlantingConstraints()
    started = time.perf_counter()
    problem = _Problem.build(
        current, economics, constraints, risk, n_scenarios, yield_correlation, seed
    )
    built = time.perf_counter()
    result = linprog(
        -problem.objective,
        A_ub=problem.a_ub,
        b_ub=problem.b_ub,
        A_eq=problem.a_eq,
        b_eq=problem.b_eq,
        bounds=problem.bounds,
        method="highs",
    )
    solved = time.perf_counter()
    if result.status != 0:
        raise PlantingInfeasible(f"the planting LP failed: {result.message}")
    return problem.plan(result, solve_seconds=solved - built, build_seconds=built - started)


# --- revenue pieces ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Curve:
    """Inverse demand P(Q) (CNY/kg for Q in t), extended as the module docstring says."""

    quantities_t: NDArray[np.float64]
    prices_cny_per_kg: NDArray[np.float64]
    flat_tail: bool

    @staticmethod
    def of(points: Sequence[tuple[float, float]]) -> _Curve:
        q = np.array([p[0] for p in points], dtype=np.float64)
        p = np.array([p[1] for p in points], dtype=np.float64)
        if p[-1] == 0.0:
            return _Curve(q, p, flat_tail=False)
        if len(q) == 1 or p[-1] == p[-2]:
            return _Curve(q, p, flat_tail=True)
        slope = (p[-1] - p[-2]) / (q[-1] - q[-2])
        zero_at = q[-1] - p[-1] / slope
        return _Curve(np.append(q, zero_at), np.append(p, 0.0), flat_tail=False)

    def price(self, quantity_t: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(Q); beyond the last point the last price (zero unless the curve ends flat)."""
        return np.asarray(
            np.interp(quantity_t, self.quantities_t, self.prices_cny_per_kg), dtype=np.float64
        )

    def revenue_cny(self, quantity_t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Revenue with free disposal: the best of selling any quantity up to Q."""
        q = np.asarray(quantity_t, dtype=np.float64)
        candidates = self._peaks()
        best = np.maximum.accumulate(candidates * self.price(candidates) * KG_PER_T)
        k = np.searchsorted(candidates, q, side="right") - 1
        below = np.where(k >= 0, best[np.clip(k, 0, None)], 0.0)
        return np.asarray(np.maximum(q * self.price(q) * KG_PER_T, below), dtype=np.float64)

    def _peaks(self) -> NDArray[np.float64]:
        """Breakpoints and, on each segment, the vertex of the parabola Q·P(Q)."""
        q, p = self.quantities_t, self.prices_cny_per_kg
        points = [0.0, *q]
        for a, b, pa, pb in zip(q[:-1], q[1:], p[:-1], p[1:], strict=True):
            slope = (pb - pa) / (b - a)
            if slope < 0:
                # d/dQ [Q (pa + slope (Q - a))] = 0 at Q = (slope·a - pa) / (2·slope).
                vertex = (slope * a - pa) / (2.0 * slope)
                if a < vertex < b:
                    points.append(vertex)
        return np.unique(np.array(points, dtype=np.float64))

    def pieces(self) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
        """(widths t, marginal revenue CNY/t, last piece unbounded) of the concave majorant,
        pieces of non-positive marginal revenue dropped."""
        q = self.quantities_t
        grid = [np.linspace(0.0, q[0], _POINTS_PER_SEGMENT + 1)] if q[0] > 0 else [np.zeros(1)]
        for a, b in itertools.pairwise(q):
            grid.append(np.linspace(a, b, _POINTS_PER_SEGMENT + 1))
        if self.flat_tail:
            grid.append(np.array([max(q[-1], 1.0) * _FLAT_TAIL_FACTOR]))
        x = np.unique(np.concatenate(grid))
        y = self.revenue_cny(x)
        hull = _upper_hull(x, y)
        widths = np.diff(x[hull])
        slopes = np.diff(y[hull]) / widths
        keep = slopes > 1e-9
        return widths[keep], slopes[keep], self.flat_tail and bool(keep[-1])


def _upper_hull(x: NDArray[np.float64], y: NDArray[np.float64]) -> list[int]:
    """Indices of the upper concave hull of points sorted by x (monotone chain)."""
    hull: list[int] = []
    for k in range(len(x)):
        while len(hull) >= 2:
            i, j = hull[-2], hull[-1]
            # Drop j when it lies on or below the chord from i to k.
            if (y[j] - y[i]) * (x[k] - x[i]) <= (y[k] - y[i]) * (x[j] - x[i]):
                hull.pop()
            else:
                break
        hull.append(k)
    return hull


# --- the LP ------------------------------------------------------------------------------


def _risk_parts(risk: Risk) -> tuple[str, float, float]:
    if risk == "mean":
        return "mean", 0.1, 0.0
    if risk == "p10":
        return "p10", 0.1, 0.0
    if isinstance(risk, tuple) and len(risk) == 3 and risk[0] == "cvar":
        alpha, lam = float(risk[1]), float(risk[2])
        if not 0.0 < alpha <= 1.0 or not 0.0 <= lam <= 1.0:
            raise ValueError(f"cvar needs 0 < alpha <= 1 and 0 <= lambda <= 1, got {risk}")
        return "cvar", alpha, lam
    raise ValueError(f"risk must be 'mean', 'p10' or ('cvar', alpha, lambda), got {risk!r}")


@dataclass(eq=False)
class _Problem:
    """The LP in the form linprog takes, and what is needed to read its solution."""

    table: pd.DataFrame  # one row per (farm, crop) variable: bounds and why
    fixed: pd.DataFrame  # held (farm, crop) rows without economics
    pairs: list[tuple[str, str]]  # (region, crop) of each aggregate
    economics: dict[tuple[str, str], CropEconomics]
    curves: dict[tuple[str, str], _Curve]
    yields: NDArray[np.float64]  # (pairs, scenarios) t/ha, for evaluation
    objective: NDArray[np.float64]
    a_ub: sparse.csr_matrix
    b_ub: NDArray[np.float64]
    a_eq: sparse.csr_matrix
    b_eq: NDArray[np.float64]
    bounds: list[tuple[float | None, float | None]]
    land_rows: dict[str, int]
    staple_rows: dict[str, int]
    region_staple_rows: dict[str, int]
    staple_required: dict[str, tuple[float, float]]  # farm or region -> (asked, required)
    land_ha: dict[str, float]
    room_ha: dict[str, float]  # farm -> land less the area held without economics
    up_vars: dict[int, int]  # table row -> hectares the row gains (switching cost paid)
    down_vars: dict[int, int]  # table row of an orchard -> hectares grubbed
    up_cost: NDArray[np.float64]  # per table row: LP cost of a hectare gained, per season
    perennial: NDArray[np.bool_]  # per table row
    constraints: PlantingConstraints
    risk_name: str
    alpha: float

    @staticmethod
    def build(
        current: pd.DataFrame,
        economics: Sequence[CropEconomics],
        constraints: PlantingConstraints,
        risk: Risk,
        n_scenarios: int,
        yield_correlation: float,
        seed: int,
    ) -> _Problem:
        risk_name, alpha, lam = _risk_parts(risk)
        missing = [c for c in ("farm", "region", "crop", "area_ha") if c not in current.columns]
        if missing:
            raise ValueError(f"current frame lacks columns {missing}")
        econ = {(e.region, e.crop): e for e in economics}
        now = (
            current.astype({"farm": str, "region": str, "crop": str})
            .groupby(["farm", "region", "crop"], as_index=False)["area_ha"]
            .sum()
        )
        regions_of = now.groupby("farm")["region"].unique()
        two = [f for f, r in regions_of.items() if len(r) > 1]
        if two:
            raise ValueError(f"farm {two[0]!r} lies in more than one region")
        farm_region = {str(f): str(r[0]) for f, r in regions_of.items()}
        grown_ha = now.groupby("farm")["area_ha"].sum()
        land = {f: float((constraints.land_ha or {}).get(f, grown_ha[f])) for f in farm_region}
        has_econ = [(r, c) in econ for r, c in zip(now["region"], now["crop"], strict=True)]
        fixed = now[~np.array(has_econ, dtype=bool)].reset_index(drop=True)
        fixed_ha = fixed.groupby("farm")["area_ha"].sum().to_dict()

        table = _variables(now, econ, farm_region, land, fixed_ha, constraints)
        pairs = sorted({(r, c) for r, c in zip(table["region"], table["crop"], strict=True)})
        curves = {p: _Curve.of(econ[p].price_curve) for p in pairs}
        yields = _yield_scenarios(
            [econ[p] for p in pairs], n_scenarios, yield_correlation, np.random.default_rng(seed)
        )
        lp_yields, weights = (
            (np.array([[econ[p].yield_t_ha_p10] for p in pairs]), np.ones(1))
            if risk_name == "p10"
            else (yields, np.full(n_scenarios, 1.0 / n_scenarios))
        )
        builder = _Builder()
        x = builder.add(
            len(table), [(lo, hi) for lo, hi in zip(table["lb"], table["ub"], strict=True)]
        )
        agg = builder.add(len(pairs), [(0.0, None)] * len(pairs))
        # Aggregates: A_rc - sum of the region's farms' x = 0.
        members_of: list[NDArray[np.intp]] = []
        for k, (region, crop) in enumerate(pairs):
            members = np.flatnonzero(
                (table["region"].to_numpy() == region) & (table["crop"].to_numpy() == crop)
            )
            members_of.append(members)
            builder.eq_row({agg[k]: 1.0, **{x[m]: -1.0 for m in members}}, 0.0)
        up_vars, down_vars, up_cost, perennial, change_terms = _change_variables(
            builder, table, x, econ, constraints
        )

        n_s = lp_yields.shape[1]
        pieces = {pair: curves[pair].pieces() for pair in pairs}
        # A planted hectare saves the rent an idle one still pays (every crop's total cost
        # includes it): so idle land is chosen only when no crop covers its cost but the rent.
        rent = constraints.land_rent_cny_per_ha
        cost = np.array([econ[p].cost_cny_per_ha - rent for p in pairs])
        objective_terms: dict[int, float] = {}
        scenario_terms: list[dict[int, float]] = []
        for s in range(n_s):
            terms: dict[int, float] = {agg[k]: -cost[k] for k in range(len(pairs))}
            for k, pair in enumerate(pairs):
                widths, slopes, unbounded = pieces[pair]
                bounds: list[tuple[float | None, float | None]] = [(0.0, float(w)) for w in widths]
                if unbounded:
                    bounds[-1] = (0.0, None)
                q = builder.add(len(widths), bounds)
                # Sold on the pieces <= produced (the rest is not sold: free disposal). A new
                # orchard's hectares bear nothing next season.
                young = {up_vars[m]: float(lp_yields[k, s]) for m in members_of[k] if perennial[m]}
                builder.ub_row(
                    {**{v: 1.0 for v in q}, agg[k]: -float(lp_yields[k, s]), **young}, 0.0
                )
                terms.update({v: float(m) for v, m in zip(q, slopes, strict=True)})
            scenario_terms.append(terms)
        mean_weight = 1.0 - lam if risk_name == "cvar" else 1.0
        for s, terms in enumerate(scenario_terms):
            for v, coef in terms.items():
                objective_terms[v] = objective_terms.get(v, 0.0) + mean_weight * weights[s] * coef
        if risk_name == "cvar" and lam > 0:
            eta = builder.add(1, [(None, None)])[0]
            tails = builder.add(n_s, [(0.0, None)] * n_s)
            objective_terms[eta] = objective_terms.get(eta, 0.0) + lam
            for s, terms in enumerate(scenario_terms):
                objective_terms[tails[s]] = -lam * weights[s] / alpha
                # eta - M_s - u_s <= 0
                builder.ub_row({eta: 1.0, **{v: -c for v, c in terms.items()}, tails[s]: -1.0}, 0.0)

        # One-off costs of change, per season of the horizon: not scenario-dependent, so
        # they weigh the same in the mean and in the CVaR.
        for v, coef in change_terms.items():
            objective_terms[v] = objective_terms.get(v, 0.0) + coef

        land_rows, staple_rows, region_staple_rows, staple_required = _farm_rows(
            builder, table, x, farm_region, land, fixed_ha, fixed, constraints
        )
        objective = np.zeros(builder.n_vars)
        for v, coef in objective_terms.items():
            objective[v] = coef
        a_ub, b_ub, a_eq, b_eq = builder.matrices()
        return _Problem(
            table=table,
            fixed=fixed,
            pairs=pairs,
            economics=econ,
            curves=curves,
            yields=yields,
            objective=objective,
            a_ub=a_ub,
            b_ub=b_ub,
            a_eq=a_eq,
            b_eq=b_eq,
            bounds=builder.bounds,
            land_rows=land_rows,
            staple_rows=staple_rows,
            region_staple_rows=region_staple_rows,
            staple_required=staple_required,
            land_ha=land,
            room_ha={f: land[f] - fixed_ha.get(f, 0.0) for f in farm_region},
            up_vars=up_vars,
            down_vars=down_vars,
            up_cost=up_cost,
            perennial=perennial,
            constraints=constraints,
            risk_name=risk_name if risk_name != "cvar" else f"cvar({alpha:g}, {lam:g})",
            alpha=alpha,
        )

    def plan(
        self, result: OptimizeResult, *, solve_seconds: float, build_seconds: float
    ) -> PlantingPlan:
        x_all = np.asarray(result.x)
        table = self.table.copy()
        n_x = len(table)
        table["recommended_ha"] = np.clip(x_all[:n_x], table["lb"], table["ub"])
        ineq = result.ineqlin
        # linprog minimises -margin; a row's marginal is d(-margin)/d(rhs).
        value_per_ha = -np.asarray(result.eqlin.marginals)[: len(self.pairs)]
        slack = np.asarray(ineq.residual)
        shadow = -np.asarray(ineq.marginals)
        before = self._evaluate(table["current_ha"].to_numpy())
        after = self._evaluate(table["recommended_ha"].to_numpy())
        idle_before, idle_after = (
            self._idle(table["current_ha"]),
            self._idle(table["recommended_ha"]),
        )
        farms = self._farm_frame(table, before, after, value_per_ha, slack, shadow, idle_after)
        farms["farm_idle_ha_before"] = farms["farm"].map(idle_before).fillna(0.0)
        farms["farm_idle_ha_after"] = farms["farm"].map(idle_after).fillna(0.0)
        regions = self._region_frame(table, before, after)
        rent = self.constraints.land_rent_cny_per_ha
        # Idle land still pays its rent: a plan that leaves land idle is charged for it.
        total_before = before.total - rent * sum(idle_before.values())
        total_after = after.total - rent * sum(idle_after.values())
        change = table["recommended_ha"].to_numpy() - table["current_ha"].to_numpy()
        gained, lost = np.clip(change, 0.0, None), np.clip(-change, 0.0, None)
        orchard = self.perennial
        econ = [
            self.economics[(str(r), str(c))]
            for r, c in zip(table["region"], table["crop"], strict=True)
        ]
        switching = [self.constraints.switching_cost(e) for e in econ]
        removal = [e.removal_cost_cny_per_ha for e in econ]
        summary = {
            "expected_margin_cny_before": float(total_before.mean()),
            "expected_margin_cny_after": float(total_after.mean()),
            "p10_margin_cny_before": float(np.quantile(total_before, 0.1)),
            "p10_margin_cny_after": float(np.quantile(total_after, 0.1)),
            "cvar_margin_cny_before": _cvar(total_before, self.alpha),
            "cvar_margin_cny_after": _cvar(total_after, self.alpha),
            "cvar_alpha": self.alpha,
            "idle_ha_before": float(sum(idle_before.values())),
            "idle_ha_after": float(sum(idle_after.values())),
            # Paid once, on top of the season's margin.
            "switching_cost_cny": float(np.dot(np.where(orchard, 0.0, switching), gained)),
            "establishment_cost_cny": float(np.dot(np.where(orchard, switching, 0.0), gained)),
            "removal_cost_cny": float(np.dot(removal, lost)),
        }
        return PlantingPlan(
            farms=farms,
            regions=regions,
            summary=summary,
            risk=self.risk_name,
            status=str(result.message),
            solve_seconds=solve_seconds,
            build_seconds=build_seconds,
            n_variables=len(self.objective),
            n_constraints=self.a_ub.shape[0] + self.a_eq.shape[0],
        )

    def _idle(self, areas_ha: pd.Series) -> dict[str, float]:
        """Farm -> hectares of its land (less the area held without economics) not planted."""
        planted = areas_ha.groupby(self.table["farm"]).sum()
        return {str(f): max(0.0, self.room_ha[str(f)] - float(a)) for f, a in planted.items()}

    # --- evaluation on the true curves ---

    def _evaluate(self, areas_ha: NDArray[np.float64]) -> _Evaluation:
        table = self.table
        n_s = self.yields.shape[1]
        # A new orchard hectare bears nothing next season.
        current = table["current_ha"].to_numpy()
        bearing = np.where(self.perennial, np.minimum(areas_ha, current), areas_ha)
        margin = np.zeros((len(table), n_s))
        quantity = np.zeros((len(self.pairs), n_s))
        price = np.zeros((len(self.pairs), n_s))
        for k, pair in enumerate(self.pairs):
            rows = np.flatnonzero(
                (table["region"].to_numpy() == pair[0]) & (table["crop"].to_numpy() == pair[1])
            )
            area = float(bearing[rows].sum())
            q = self.yields[k] * area
            revenue = self.curves[pair].revenue_cny(q)
            per_t = np.divide(revenue, q, out=np.zeros_like(q), where=q > 0)
            quantity[k], price[k] = q, per_t / KG_PER_T
            cost = self.economics[pair].cost_cny_per_ha
            margin[rows] = (
                bearing[rows, None] * self.yields[k][None, :] * per_t[None, :]
                - areas_ha[rows, None] * cost
            )
        return _Evaluation(margin=margin, quantity_t=quantity, price_cny_per_kg=price)

    def _farm_frame(
        self,
        table: pd.DataFrame,
        before: _Evaluation,
        after: _Evaluation,
        value_per_ha: NDArray[np.float64],
        slack: NDArray[np.float64],
        shadow: NDArray[np.float64],
        idle_after: Mapping[str, float],
    ) -> pd.DataFrame:
        pair_index = {p: k for k, p in enumerate(self.pairs)}
        binding_all, reasons_all = [], []
        rent = self.constraints.land_rent_cny_per_ha
        idle_text = self._idle_reasons(table, value_per_ha, idle_after)
        moves = self._moves(table, value_per_ha, idle_after)
        for i, (row, recommended) in enumerate(
            zip(table.itertuples(index=False), table["recommended_ha"], strict=True)
        ):
            farm, crop, region = str(row.farm), str(row.crop), str(row.region)
            land = self.land_ha[farm]
            tol = 1e-6 * max(1.0, land)
            binding: list[str] = []
            reasons: list[str] = []
            k = pair_index[(region, crop)]
            econ = self.economics[(region, crop)]
            cost = econ.cost_cny_per_ha
            # value_per_ha is net of the cost less the rent an idle hectare would pay.
            earns = value_per_ha[k] + cost - rent
            change = recommended - row.current_ha
            verb = "more" if change > tol else "less" if change < -tol else "unchanged"
            reasons.append(
                f"{verb} {crop}: at the recommended supply of {region}, the last hectare of "
                f"{crop} earns {earns:,.0f} CNY ({self.risk_name}; the price falls as the "
                f"region's quantity grows) against a cost of {cost:,.0f} CNY/ha, "
                f"{earns - cost:+,.0f} CNY/ha net"
            )
            land_row = self.land_rows.get(farm)
            reason, name = self._change_reason(i, crop, econ, change, moves[i])
            if reason:
                reasons.append(reason)
            if name:
                binding.append(name)
            delta = self.constraints.change_share(crop, econ.perennial)
            if recommended >= row.ub - tol and row.ub < land - tol:
                for name in str(row.ub_by).split(","):
                    binding.append(name)
                    reasons.append(_BOUND_TEXT[name].format(crop=crop, share=delta, ha=row.ub))
            if recommended <= row.lb + tol and row.lb > tol:
                binding.append("max_change_down")
                reasons.append(
                    _BOUND_TEXT["max_change_down"].format(crop=crop, share=delta, ha=row.lb)
                )
            if land_row is not None and slack[land_row] <= tol and shadow[land_row] > 1e-6:
                binding.append("land")
                reasons.append(
                    f"all {land:,.2f} ha of the farm are used: its land earns "
                    f"{shadow[land_row]:,.0f} CNY/ha net in its best use, the bar each crop "
                    "must clear"
                )
            if farm in idle_text:
                binding.append("idle")
                reasons.append(idle_text[farm])
            if crop in self.constraints.staple_crops:
                staple_row = self.staple_rows.get(farm)
                if staple_row is not None and slack[staple_row] <= tol:
                    asked, required = self.staple_required[farm]
                    binding.append("staple_farm")
                    reasons.append(
                        f"staple minimum: {'/'.join(self.constraints.staple_crops)} on at least "
                        f"{required:,.2f} ha of the farm"
                        + (
                            ""
                            if required >= asked - tol
                            else f" (asked {asked:,.2f} ha; the change limit allows no more this"
                            " season)"
                        )
                    )
                region_row = self.region_staple_rows.get(region)
                if region_row is not None and slack[region_row] <= tol:
                    binding.append("staple_region")
                    reasons.append(
                        f"regional staple minimum: {self.staple_required[region][1]:,.0f} ha of "
                        f"{'/'.join(self.constraints.staple_crops)} in {region}"
                    )
            binding_all.append(binding)
            reasons_all.append(reasons)
        farms = pd.DataFrame(
            {
                "farm": table["farm"],
                "region": table["region"],
                "crop": table["crop"],
                "current_ha": table["current_ha"],
                "recommended_ha": table["recommended_ha"],
                "change_ha": table["recommended_ha"] - table["current_ha"],
                "expected_margin_cny_before": before.margin.mean(axis=1),
                "expected_margin_cny_after": after.margin.mean(axis=1),
                "binding": binding_all,
                "reasons": reasons_all,
            }
        )
        if not self.fixed.empty:
            held = pd.DataFrame(
                {
                    "farm": self.fixed["farm"],
                    "region": self.fixed["region"],
                    "crop": self.fixed["crop"],
                    "current_ha": self.fixed["area_ha"],
                    "recommended_ha": self.fixed["area_ha"],
                    "change_ha": 0.0,
                    "expected_margin_cny_before": np.nan,
                    "expected_margin_cny_after": np.nan,
                    "binding": [["no_economics"] for _ in range(len(self.fixed))],
                    "reasons": [
                        [f"held: no economics for {c} in {r}"]
                        for c, r in zip(self.fixed["crop"], self.fixed["region"], strict=True)
                    ],
                }
            )
            farms = pd.concat([farms, held], ignore_index=True)
        return farms.sort_values(["farm", "crop"], ignore_index=True)

    def _change_reason(
        self,
        i: int,
        crop: str,
        econ: CropEconomics,
        change: float,
        moves: _Moves,
    ) -> tuple[str, str]:
        """Why a row moved or stayed against the cost of change, and that cost's name.

        ``moves``: the gross gain a season of one hectare more of the crop (taken from
        the farm's cheapest source of land) and of one hectare less (given to its best
        other use, and that use's switching cost), from the LP's values at the plan.
        """
        annuity = self.constraints.annuity_factor
        horizon = (
            f"{self.constraints.perennial_horizon_years} seasons at "
            f"{self.constraints.discount_rate:.0%}"
        )
        tol = 1e-6 * max(1.0, self.land_ha[moves.farm])
        cny = 1.0  # gains within a yuan per hectare are indifference, not a reason
        up_cost = float(self.up_cost[i])
        if econ.perennial:
            setup = econ.establishment_cost_cny_per_ha
            removal = econ.removal_cost_cny_per_ha
            if change > tol:
                return (
                    f"new {crop} bears nothing for {econ.years_to_bearing} seasons and costs "
                    f"{setup:,.0f} CNY/ha to plant ({up_cost:,.0f} a season over {horizon})",
                    "",
                )
            down = moves.down
            if down is not None:
                net = down.gain - down.switching_cost
                if change < -tol:
                    return (
                        f"grubbed: a hectare of {crop} given to {down.to} gains {net:,.0f} "
                        f"CNY/ha a season, {net * annuity:,.0f} over {horizon}, which covers "
                        f"the removal cost of {removal:,.0f} CNY/ha",
                        "",
                    )
                if net > cny and moves.can_shrink:
                    return (
                        f"kept: grubbing a hectare of {crop} for {down.to} would gain "
                        f"{net:,.0f} CNY/ha a season, {net * annuity:,.0f} over {horizon}, "
                        f"less than the removal cost of {removal:,.0f} CNY/ha",
                        "removal_cost",
                    )
            if moves.up is not None and moves.up.gain > cny and moves.can_grow:
                return (
                    f"kept: a new hectare of {crop} would bear nothing for "
                    f"{econ.years_to_bearing} seasons and cost {setup:,.0f} CNY/ha to plant",
                    "establishment_cost",
                )
            return "", ""
        if change > tol and up_cost > 0:
            return (
                f"each hectare added pays a switching cost of {up_cost:,.0f} CNY/ha once; "
                "the gain covers it",
                "",
            )
        if abs(change) > tol:
            return "", ""
        if moves.up is not None and cny < moves.up.gain and up_cost > 0 and moves.can_grow:
            return (
                f"kept: the gain of {moves.up.gain:,.0f} CNY/ha from a hectare more of {crop} "
                f"(instead of {moves.up.to}) is below the switching cost of {up_cost:,.0f} "
                "CNY/ha",
                "switching_cost",
            )
        down = moves.down
        if down is not None and down.gain > cny and down.switching_cost > 0 and moves.can_shrink:
            return (
                f"kept: the gain of {down.gain:,.0f} CNY/ha from moving a hectare of {crop} "
                f"to {down.to} is below the switching cost of {down.switching_cost:,.0f} "
                "CNY/ha",
                "switching_cost",
            )
        return "", ""

    def _row_values(
        self, table: pd.DataFrame, value_per_ha: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Per table row: the LP's value of a hectare more of its crop (its pair's dual)."""
        pair_index = {p: k for k, p in enumerate(self.pairs)}
        rows = [
            pair_index[(str(r), str(c))]
            for r, c in zip(table["region"], table["crop"], strict=True)
        ]
        return np.asarray(value_per_ha[np.array(rows, dtype=np.intp)], dtype=np.float64)

    def _moves(
        self,
        table: pd.DataFrame,
        value_per_ha: NDArray[np.float64],
        idle_after: Mapping[str, float],
    ) -> list[_Moves]:
        """Per row: the best hectare more and less of its crop on its farm (see _Moves)."""
        values = self._row_values(table, value_per_ha)
        x_all = table["recommended_ha"].to_numpy()
        ub_all, lb_all = table["ub"].to_numpy(), table["lb"].to_numpy()
        current_all = table["current_ha"].to_numpy()
        crop_all = [str(c) for c in table["crop"]]
        moves: list[_Moves] = [_Moves("", None, None)] * len(table)
        for farm, index in table.groupby("farm", sort=False).indices.items():
            farm = str(farm)
            tol = 1e-6 * max(1.0, self.land_ha[farm])
            idle = idle_after.get(farm, 0.0) > tol
            x = x_all[index]
            can_grow = x < ub_all[index] - tol
            can_shrink = x > lb_all[index] + tol
            grew = x > current_all[index] + tol
            crops = [crop_all[i] for i in index]
            for a, i in enumerate(index):
                # Land for a hectare more: idle land (worth nothing) or the least valuable
                # crop that may shrink.
                sources = [(0.0, "idle land")] if idle else []
                sources += [
                    (values[j], crops[b]) for b, j in enumerate(index) if b != a and can_shrink[b]
                ]
                up = None
                if sources:
                    worth, name = min(sources)
                    up = _Move(float(values[i] - worth), 0.0, name)
                # A hectare less: left idle (unless the land must stay planted) or given to
                # the crop that gains most after its switching cost.
                sinks = [] if self.constraints.keep_land_planted else [(0.0, 0.0, "idle land")]
                sinks += [
                    (values[j], float(self.up_cost[j]), crops[b])
                    for b, j in enumerate(index)
                    if b != a and (can_grow[b] or grew[b]) and not self.perennial[j]
                ]
                down = None
                if sinks:
                    worth, cost, name = max(sinks, key=lambda s: s[0] - s[1])
                    down = _Move(float(worth - values[i]), cost, name)
                moves[i] = _Moves(farm, up, down, bool(can_grow[a]), bool(can_shrink[a]))
        return moves

    def _idle_reasons(
        self,
        table: pd.DataFrame,
        value_per_ha: NDArray[np.float64],
        idle_after: Mapping[str, float],
    ) -> dict[str, str]:
        """Farm -> why it leaves land idle, for each farm that does."""
        rent = self.constraints.land_rent_cny_per_ha
        idle_farms = {
            f: ha for f, ha in idle_after.items() if ha > 1e-6 * max(1.0, self.land_ha[f])
        }
        if not idle_farms:
            return {}
        values = self._row_values(table, value_per_ha)
        x_all = table["recommended_ha"].to_numpy()
        ub_all = table["ub"].to_numpy()
        crop_all = [str(c) for c in table["crop"]]
        texts: dict[str, str] = {}
        for farm, index in table.groupby("farm", sort=True).indices.items():
            farm = str(farm)
            if farm not in idle_farms:
                continue
            tol = 1e-6 * max(1.0, self.land_ha[farm])
            head = f"{idle_farms[farm]:,.2f} ha of the farm left idle"
            open_rows = [i for i in index if x_all[i] < ub_all[i] - tol]
            if not open_rows:
                texts[farm] = f"{head}: every crop it may grow is at its change or rotation limit"
                continue
            best, crop, i = max((float(values[i]), crop_all[i], int(i)) for i in open_rows)
            if best <= 1.0:
                texts[farm] = (
                    f"{head}: no crop's last hectare here covers its cost but the "
                    f"{rent:,.0f} CNY/ha rent idle land still pays (best: {crop}, "
                    f"{best - rent:+,.0f} CNY/ha net of its cost)"
                )
            else:
                texts[farm] = (
                    f"{head}: planting it with {crop} would gain {best:,.0f} CNY/ha over the "
                    f"{rent:,.0f} CNY/ha rent idle land still pays ({crop} nets "
                    f"{best - rent:+,.0f} CNY/ha on its cost), below its switching cost of "
                    f"{self.up_cost[i]:,.0f} CNY/ha"
                )
        return texts

    def _region_frame(
        self, table: pd.DataFrame, before: _Evaluation, after: _Evaluation
    ) -> pd.DataFrame:
        rows = []
        for k, (region, crop) in enumerate(self.pairs):
            mask = (table["region"] == region) & (table["crop"] == crop)
            rows.append(
                {
                    "region": region,
                    "crop": crop,
                    "current_ha": float(table.loc[mask, "current_ha"].sum()),
                    "recommended_ha": float(table.loc[mask, "recommended_ha"].sum()),
                    "expected_quantity_t_before": float(before.quantity_t[k].mean()),
                    "expected_quantity_t_after": float(after.quantity_t[k].mean()),
                    "expected_price_cny_per_kg_before": float(before.price_cny_per_kg[k].mean()),
                    "expected_price_cny_per_kg_after": float(after.price_cny_per_kg[k].mean()),
                    "observed_price_cny_per_kg": _or_nan(
                        self.economics[(region, crop)].observed_price_cny_per_kg
                    ),
                    "expected_margin_cny_before": float(
                        before.margin[mask.to_numpy()].sum(axis=0).mean()
                    ),
                    "expected_margin_cny_after": float(
                        after.margin[mask.to_numpy()].sum(axis=0).mean()
                    ),
                }
            )
        frame = pd.DataFrame(rows)
        frame["change_ha"] = frame["recommended_ha"] - frame["current_ha"]
        return frame


_BOUND_TEXT = {
    "land": "{crop} fills the farm's free land ({ha:,.2f} ha)",
    "max_change_up": "limited by the change limit: {crop} may grow by at most {share:.0%} of "
    "the farm's land a season (to {ha:,.2f} ha)",
    "max_change_down": "limited by the change limit: {crop} may shrink by at most {share:.0%} "
    "of the farm's land a season (to {ha:,.2f} ha)",
    "rotation_share": "rotation: {crop} on at most its allowed share of the farm ({ha:,.2f} ha)",
    "rotation_repeat": "rotation: {crop} may follow itself on only part of the farm, so at "
    "most {ha:,.2f} ha",
    "rotation_unreachable": "rotation limit not reachable this season: {crop} is kept at the "
    "change limit ({ha:,.2f} ha)",
}


@dataclass(frozen=True, slots=True)
class _Move:
    """A hectare moved into or out of a crop on a farm: the gain a season before the
    switching cost of the crop receiving it, and the other end of the move."""

    gain: float
    switching_cost: float
    to: str


@dataclass(frozen=True, slots=True)
class _Moves:
    farm: str
    up: _Move | None  # a hectare more, taken from ``up.to``
    down: _Move | None  # a hectare less, given to ``down.to``
    can_grow: bool = False  # within the row's bounds
    can_shrink: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class _Evaluation:
    margin: NDArray[np.float64]  # (farm-crop rows, scenarios) CNY
    quantity_t: NDArray[np.float64]  # (pairs, scenarios)
    price_cny_per_kg: NDArray[np.float64]  # (pairs, scenarios) realised average price

    @property
    def total(self) -> NDArray[np.float64]:
        return np.asarray(self.margin.sum(axis=0), dtype=np.float64)


class _Builder:
    """Collects variables (with bounds) and sparse rows for linprog."""

    def __init__(self) -> None:
        self.bounds: list[tuple[float | None, float | None]] = []
        self._ub: tuple[list[int], list[int], list[float], list[float]] = ([], [], [], [])
        self._eq: tuple[list[int], list[int], list[float], list[float]] = ([], [], [], [])

    @property
    def n_vars(self) -> int:
        return len(self.bounds)

    def add(self, n: int, bounds: Sequence[tuple[float | None, float | None]]) -> list[int]:
        first = len(self.bounds)
        self.bounds.extend(bounds)
        return list(range(first, first + n))

    def ub_row(self, terms: Mapping[int, float], rhs: float) -> int:
        return self._row(self._ub, terms, rhs)

    def eq_row(self, terms: Mapping[int, float], rhs: float) -> int:
        return self._row(self._eq, terms, rhs)

    @staticmethod
    def _row(
        store: tuple[list[int], list[int], list[float], list[float]],
        terms: Mapping[int, float],
        rhs: float,
    ) -> int:
        rows, cols, vals, rhss = store
        index = len(rhss)
        rows.extend([index] * len(terms))
        cols.extend(terms.keys())
        vals.extend(terms.values())
        rhss.append(rhs)
        return index

    def matrices(
        self,
    ) -> tuple[sparse.csr_matrix, NDArray[np.float64], sparse.csr_matrix, NDArray[np.float64]]:
        def matrix(
            store: tuple[list[int], list[int], list[float], list[float]],
        ) -> tuple[sparse.csr_matrix, NDArray[np.float64]]:
            rows, cols, vals, rhss = store
            shape = (len(rhss), self.n_vars)
            return (
                sparse.csr_matrix((vals, (rows, cols)), shape=shape),
                np.array(rhss, dtype=np.float64),
            )

        a_ub, b_ub = matrix(self._ub)
        a_eq, b_eq = matrix(self._eq)
        return a_ub, b_ub, a_eq, b_eq


def _variables(
    now: pd.DataFrame,
    econ: Mapping[tuple[str, str], CropEconomics],
    farm_region: Mapping[str, str],
    land: Mapping[str, float],
    fixed_ha: Mapping[str, float],
    constraints: PlantingConstraints,
) -> pd.DataFrame:
    """One row per farm and crop it may grow: current area, bounds and which rule set them."""
    crops_by_region: dict[str, list[str]] = {}
    for region, crop in econ:
        crops_by_region.setdefault(region, []).append(crop)
    current = {
        (str(f), str(c)): float(a)
        for f, c, a in zip(now["farm"], now["crop"], now["area_ha"], strict=True)
    }
    rules = {r.crop: r for r in constraints.rotation}
    rows = []
    for farm, region in sorted(farm_region.items()):
        land_f = land[farm]
        room = land_f - fixed_ha.get(farm, 0.0)
        for crop in sorted(crops_by_region.get(region, [])):
            cur = current.get((farm, crop), 0.0)
            delta = constraints.change_share(crop, econ[(region, crop)].perennial)
            lb = max(0.0, cur - delta * land_f)
            limits = {"max_change_up": cur + delta * land_f, "land": room}
            rule = rules.get(crop)
            if rule is not None:
                limits["rotation_share"] = rule.max_share_of_farm * land_f
                # Repeats only on land that grew it; land that did not is free for it.
                limits["rotation_repeat"] = rule.max_repeat_share_of_farm * land_f + max(
                    0.0, land_f - cur
                )
            ub = min(limits.values())
            by = [name for name, value in limits.items() if value <= ub + 1e-9 and name != "land"]
            if ub < lb:
                ub, by = lb, ["rotation_unreachable"]
            rows.append(
                {
                    "farm": farm,
                    "region": region,
                    "crop": crop,
                    "current_ha": cur,
                    "lb": lb,
                    "ub": max(ub, 0.0),
                    "ub_by": ",".join(by) if by else "land",
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError("no farm grows or may grow any crop with economics")
    return table


def _change_variables(
    builder: _Builder,
    table: pd.DataFrame,
    x: Sequence[int],
    econ: Mapping[tuple[str, str], CropEconomics],
    constraints: PlantingConstraints,
) -> tuple[
    dict[int, int], dict[int, int], NDArray[np.float64], NDArray[np.bool_], dict[int, float]
]:
    """Hectares each row gains (``up >= x - current``) and an orchard loses (``down >=
    current - x``), with their objective costs: an annual crop's switching cost; an orchard's
    establishment and removal costs spread over the horizon's discounted seasons (a change
    of ``g`` CNY/ha a season pays when ``g · annuity >= the one-off cost``)."""
    annuity = constraints.annuity_factor
    up_vars: dict[int, int] = {}
    down_vars: dict[int, int] = {}
    terms: dict[int, float] = {}
    up_cost = np.zeros(len(table))
    perennial = np.zeros(len(table), dtype=bool)
    for i, (region, crop, current) in enumerate(
        zip(table["region"], table["crop"], table["current_ha"], strict=True)
    ):
        e = econ[(str(region), str(crop))]
        perennial[i] = e.perennial
        up_cost[i] = constraints.switching_cost(e) / (annuity if e.perennial else 1.0)
        if up_cost[i] > 0 or e.perennial:
            v = builder.add(1, [(0.0, None)])[0]
            builder.ub_row({x[i]: 1.0, v: -1.0}, float(current))
            up_vars[i], terms[v] = v, -float(up_cost[i])
        if e.perennial and e.removal_cost_cny_per_ha > 0:
            v = builder.add(1, [(0.0, None)])[0]
            builder.ub_row({x[i]: -1.0, v: -1.0}, -float(current))
            down_vars[i], terms[v] = v, -e.removal_cost_cny_per_ha / annuity
    return up_vars, down_vars, up_cost, perennial, terms


def _farm_rows(
    builder: _Builder,
    table: pd.DataFrame,
    x: Sequence[int],
    farm_region: Mapping[str, str],
    land: Mapping[str, float],
    fixed_ha: Mapping[str, float],
    fixed: pd.DataFrame,
    constraints: PlantingConstraints,
) -> tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, tuple[float, float]]]:
    land_rows: dict[str, int] = {}
    staple_rows: dict[str, int] = {}
    region_rows: dict[str, int] = {}
    required: dict[str, tuple[float, float]] = {}
    staples = set(constraints.staple_crops)
    fixed_staple = fixed[fixed["crop"].isin(staples)].groupby("farm")["area_ha"].sum().to_dict()
    reachable_by_farm: dict[str, float] = {}
    # Arrays and positions, not per-farm frames: a thousand farms' rows in milliseconds.
    lb_all, ub_all = table["lb"].to_numpy(), table["ub"].to_numpy()
    current_all = table["current_ha"].to_numpy()
    staple_all = table["crop"].isin(staples).to_numpy()
    for farm, index in sorted(table.groupby("farm").indices.items()):
        farm = str(farm)
        members = [x[i] for i in index]
        room = land[farm] - fixed_ha.get(farm, 0.0)
        lb, ub, is_staple = lb_all[index], ub_all[index], staple_all[index]
        if lb.sum() > room + 1e-9:
            raise PlantingInfeasible(
                f"farm {farm}: its crops cannot shrink to fit {land[farm]:g} ha within the "
                "change limit"
            )
        land_rows[farm] = builder.ub_row({v: 1.0 for v in members}, room)
        if constraints.keep_land_planted:
            planted = min(float(current_all[index].sum()), room, float(ub.sum()))
            builder.ub_row({v: -1.0 for v in members}, -planted)
        reachable = min(float(ub[is_staple].sum()), room - float(lb[~is_staple].sum()))
        reachable_by_farm[farm] = reachable
        asked = constraints.min_staple_share_per_farm * land[farm] - fixed_staple.get(farm, 0.0)
        if asked > 1e-9 and is_staple.any():
            need = min(asked, reachable)
            required[farm] = (asked, need)
            staple_rows[farm] = builder.ub_row(
                {members[i]: -1.0 for i in np.flatnonzero(is_staple)}, -need
            )
    for region, asked_ha in sorted(constraints.min_staple_ha_per_region.items()):
        in_region = table[(table["region"] == region) & table["crop"].isin(staples)]
        if in_region.empty:
            continue
        held = sum(fixed_staple.get(f, 0.0) for f, r in farm_region.items() if r == region)
        reach = sum(v for f, v in reachable_by_farm.items() if farm_region[f] == region)
        need = min(asked_ha - held, reach)
        if need > 1e-9:
            required[region] = (asked_ha, need)
            region_rows[region] = builder.ub_row({x[i]: -1.0 for i in in_region.index}, -need)
    return land_rows, staple_rows, region_rows, required


def _yield_scenarios(
    economics: Sequence[CropEconomics],
    n_scenarios: int,
    correlation: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Lognormal yields (pairs, scenarios) with the given P50/P10 and a common factor."""
    if n_scenarios < 2:
        raise ValueError("need at least two yield scenarios")
    if not 0.0 <= correlation <= 1.0:
        raise ValueError("yield_correlation must be within [0, 1]")
    half = (n_scenarios + 1) // 2
    # Antithetic pairs keep the scenario mean of z at zero, so the median yield is the centre.
    common = rng.standard_normal(half)
    own = rng.standard_normal((len(economics), half))
    z_half = np.sqrt(correlation) * common[None, :] + np.sqrt(1.0 - correlation) * own
    z = np.concatenate([z_half, -z_half], axis=1)[:, :n_scenarios]
    p50 = np.array([e.yield_t_ha_p50 for e in economics])
    p10 = np.array([e.yield_t_ha_p10 for e in economics])
    sigma = np.log(p50 / np.maximum(p10, 1e-9 * p50)) / Z90
    return np.asarray(p50[:, None] * np.exp(sigma[:, None] * z), dtype=np.float64)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _cvar(values: NDArray[np.float64], alpha: float) -> float:
    """Mean of the worst ``alpha`` share of equally likely values."""
    ordered = np.sort(values)
    n_tail = max(1, int(np.ceil(alpha * len(ordered))))
    return float(ordered[:n_tail].mean())
