"""A device's 5G radio link: signal, interference, latency, loss and coverage outages. Pure.

Every value is a function of ``(seed, device, t_s)``:

* **RSRP** = a per-device mean set by the distance to its cell (log-distance
  path loss) and location shadowing, plus slow fading (a Gauss-Markov
  process: crops growing, foliage wet or dry, vehicles, the cell's tilt
  and load) and per-sample fast fading;
* **SINR** = RSRP against thermal noise plus the neighbouring cells'
  interference, which itself fades slowly;
* **packet loss** per transmission falls with SINR like a block error rate
  curve; HARQ retransmits a lost block, so on the MQTT level loss shows up as
  **latency** (a lognormal body, HARQ round trips, and a heavy tail of RLC/TCP
  retransmissions and scheduling stalls), not as missing messages;
* **coverage outages** (a cell down, backhaul cut, a power cut at the site) are
  an alternating renewal process: rare, lasting hours to days. Tests can force
  outages over chosen windows (:class:`Outage`).

During an outage the modem has no serving cell: it reports its noise floor
as RSRP and SINR, and no latency (no round trip can be measured).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from firmware_sim import _noise
from firmware_sim.device._processes import (
    DurationLaw,
    Episode,
    episode_at,
    gauss_markov,
    next_episode,
)

HOUR_S = 3600.0
DAY_S = 86_400.0
YEAR_S = 365.2422 * DAY_S

HARQ_MAX_RETRANSMISSIONS = 4  # NR HARQ gives up after this many; RLC/TCP take over
RSRP_FLOOR_DBM = -140.0  # what a modem without a serving cell reports
SINR_FLOOR_DB = -20.0


@dataclass(frozen=True, slots=True)
class RadioProfile:
    """How the 5G link of a fleet behaves (the defaults: a rural 700 MHz NR macro cell).

    RSRP at distance ``d`` from the cell is ``rsrp_at_1km_dbm - 10 * n * log10(d)``
    with ``n = path_loss_exponent``; devices sit uniformly over an annulus of
    ``cell_distance_km``.
    """

    cell_distance_km: tuple[float, float] = (0.5, 8.0)
    rsrp_at_1km_dbm: float = -72.0
    path_loss_exponent: float = 3.5
    shadowing_sigma_db: float = 8.0  # fixed per device: its spot behind a hill or a tree line
    fading_sigma_db: float = 4.0  # slow fading around that
    fading_correlation_s: float = 1800.0
    fast_fading_sigma_db: float = 1.5  # per sample, uncorrelated
    noise_dbm: float = -125.0  # thermal noise per 15 kHz resource element + noise figure
    interference_dbm: float = -112.0  # mean neighbour-cell interference per RE
    interference_sigma_db: float = 4.0  # fixed per device plus as much fading in time
    interference_correlation_s: float = 3600.0
    loss_sinr_50_db: float = -3.0  # SINR at which half the transmissions fail
    loss_slope_db: float = 1.5
    latency_median_ms: float = 24.0  # good-signal round trip of a 5G NSA uplink
    latency_sigma: float = 0.3  # lognormal spread of the body
    harq_rtt_ms: float = 8.0
    retransmission_timeout_ms: float = 200.0  # RLC/TCP after HARQ gave up
    latency_tail_probability: float = 0.02  # scheduling stalls, handovers, paging
    latency_tail_scale_ms: float = 80.0  # Pareto tail: scale and shape
    latency_tail_shape: float = 1.5
    outages_per_year: float = 4.0  # per device
    outage_median_h: float = 8.0
    outage_sigma: float = 1.0
    outage_min_h: float = 1.0
    outage_max_h: float = 10 * 24.0

    @property
    def outage_law(self) -> DurationLaw:
        """Outage durations: lognormal in hours, clipped to [min, max]."""
        return DurationLaw(
            self.outage_median_h * HOUR_S,
            self.outage_sigma,
            self.outage_min_h * HOUR_S,
            self.outage_max_h * HOUR_S,
        )


@dataclass(frozen=True, slots=True)
class Outage:
    """A forced coverage outage ``[start_s, end_s)`` for ``device`` (None: every device)."""

    start_s: float
    end_s: float
    device: str | None = None

    def __post_init__(self) -> None:
        if not self.end_s > self.start_s:
            raise ValueError("an outage must end after it starts")

    def applies_to(self, device: str) -> bool:
        return self.device is None or self.device == device


@dataclass(frozen=True, slots=True)
class LinkState:
    """The radio link of a device at one instant."""

    up: bool
    rsrp_dbm: float
    sinr_db: float
    latency_ms: float | None  # None while there is no link to measure
    loss_probability: float  # per transmission, before HARQ
    expected_transmissions: float  # HARQ attempts per block, on average (energy per uplink)


def packet_loss_probability(
    sinr_db: float, sinr_50_db: float = -3.0, slope_db: float = 1.5
) -> float:
    """Chance that one transmission fails at ``sinr_db``: a logistic block-error curve.

    About 1e-4 at 10 dB, 12 % at 0 dB, 80 % at -5 dB with the defaults.
    """
    x = (sinr_db - sinr_50_db) / slope_db
    if x > 40:
        return 0.0
    return min(0.99, 1.0 / (1.0 + math.exp(x)))


def expected_transmissions(loss_probability: float) -> float:
    """Average HARQ attempts per block (geometric, capped at the HARQ maximum)."""
    p = loss_probability
    attempts = HARQ_MAX_RETRANSMISSIONS + 1
    return (1 - p**attempts) / (1 - p) if p < 1 else float(attempts)


def latency_ms(
    profile: RadioProfile, sinr_db: float, draws: tuple[float, float, float, float]
) -> float:
    """One round-trip latency at ``sinr_db`` from four uniform draws in (0, 1).

    A lognormal body, plus a HARQ round trip per failed attempt (geometric in
    the loss probability), plus a retransmission timeout when HARQ gave up,
    plus, rarely, a Pareto-tailed stall. The body stretches at low SINR, where
    the scheduler picks slower codes.
    """
    u_body, u_harq, u_tail_hit, u_tail = draws
    body = profile.latency_median_ms * math.exp(profile.latency_sigma * _standard_normal(u_body))
    body *= 1.0 + max(0.0, 5.0 - sinr_db) / 10.0
    p = packet_loss_probability(sinr_db, profile.loss_sinr_50_db, profile.loss_slope_db)
    # Failed attempts before a success: geometric, by inverting its CDF.
    failures = (
        HARQ_MAX_RETRANSMISSIONS + 1
        if p >= 0.99
        else (math.floor(math.log(u_harq) / math.log(p)) if p > 0 else 0)
    )
    extra = min(failures, HARQ_MAX_RETRANSMISSIONS) * profile.harq_rtt_ms
    if failures > HARQ_MAX_RETRANSMISSIONS:
        extra += profile.retransmission_timeout_ms
    if u_tail_hit < profile.latency_tail_probability:
        extra += profile.latency_tail_scale_ms * (u_tail ** (-1.0 / profile.latency_tail_shape) - 1)
    return min(60_000.0, body + extra)


_STANDARD_NORMAL = NormalDist()


def _standard_normal(u: float) -> float:
    return _STANDARD_NORMAL.inv_cdf(u)


class RadioModel:
    """The radio of every device of a fleet: pure in ``(device, t_s)`` for a seed and profile.

    ``profile=None`` is an ideal radio: the link is up except in forced outages,
    and :meth:`link` reports nothing but ``up``.
    """

    def __init__(
        self,
        seed: int,
        profile: RadioProfile | None = RadioProfile(),
        forced_outages: tuple[Outage, ...] = (),
    ) -> None:
        self.seed = seed
        self.profile = profile
        self.forced_outages = forced_outages

    # --- coverage ----------------------------------------------------------------------

    def outage_at(self, device: str, t_s: float) -> Episode | None:
        """The outage ``device`` is in at ``t_s`` (the one ending last), or None."""
        covering = [
            Episode(o.start_s, o.end_s)
            for o in self.forced_outages
            if o.applies_to(device) and o.start_s <= t_s < o.end_s
        ]
        if self.profile is not None:
            natural = episode_at(
                self.seed, "outage", device, t_s, self._outage_rate_per_s, self.profile.outage_law
            )
            if natural is not None:
                covering.append(natural)
        return max(covering, key=lambda e: e.end_s, default=None)

    def link_up(self, device: str, t_s: float) -> bool:
        """Whether ``device`` has coverage at ``t_s``."""
        return self.outage_at(device, t_s) is None

    def next_outage(self, device: str, after_s: float) -> Episode | None:
        """The first outage of ``device`` that ends after ``after_s`` (it may be under way).

        None when there is none in the next few years.
        """
        candidates = [
            Episode(o.start_s, o.end_s)
            for o in self.forced_outages
            if o.applies_to(device) and o.end_s > after_s
        ]
        if self.profile is not None:
            rate_per_s, law = self._outage_rate_per_s, self.profile.outage_law
            natural = next_episode(self.seed, "outage", device, after_s, rate_per_s, law)
            if natural is not None:
                candidates.append(natural)
        return min(candidates, key=lambda e: (e.start_s, -e.end_s), default=None)

    @property
    def _outage_rate_per_s(self) -> float:
        return 0.0 if self.profile is None else self.profile.outages_per_year / YEAR_S

    # --- signal ------------------------------------------------------------------------

    def mean_rsrp_dbm(self, device: str) -> float:
        """The device's long-term RSRP: path loss at its distance, and its shadowing."""
        p = self._require_profile()
        near, far = p.cell_distance_km
        # Uniform over the annulus: the distance's square is uniform.
        u = _noise.uniform(self.seed, "cell-distance", device, 0)
        distance_km = math.sqrt(near**2 + u * (far**2 - near**2))
        shadowing = p.shadowing_sigma_db * _noise.normal(self.seed, "shadowing", device, 0)
        return p.rsrp_at_1km_dbm - 10 * p.path_loss_exponent * math.log10(distance_km) + shadowing

    def link(self, device: str, t_s: float) -> LinkState:
        """The link of ``device`` at ``t_s``: coverage, RSRP, SINR, latency and loss."""
        up = self.link_up(device, t_s)
        p = self.profile
        if p is None:
            return LinkState(up, math.nan, math.nan, None, 0.0, 1.0)
        t_ms = round(t_s * 1000)
        if not up:
            rsrp = RSRP_FLOOR_DBM + 2.0 * _noise.normal(self.seed, "rsrp-floor", device, t_ms)
            sinr = SINR_FLOOR_DB + _noise.normal(self.seed, "sinr-floor", device, t_ms)
            return LinkState(False, rsrp, sinr, None, 1.0, 1.0)
        rsrp = (
            self.mean_rsrp_dbm(device)
            + p.fading_sigma_db
            * gauss_markov(self.seed, "slow-fading", device, t_s, p.fading_correlation_s)
            + p.fast_fading_sigma_db * _noise.normal(self.seed, "fast-fading", device, t_ms)
        )
        interference = (
            p.interference_dbm
            + p.interference_sigma_db * _noise.normal(self.seed, "interference-site", device, 0)
            + p.interference_sigma_db
            * gauss_markov(self.seed, "interference", device, t_s, p.interference_correlation_s)
        )
        noise_and_interference_mw = 10 ** (p.noise_dbm / 10) + 10 ** (interference / 10)
        sinr = rsrp - 10 * math.log10(noise_and_interference_mw)
        loss = packet_loss_probability(sinr, p.loss_sinr_50_db, p.loss_slope_db)
        draws = (
            _noise.uniform(self.seed, "latency-body", device, t_ms),
            _noise.uniform(self.seed, "latency-harq", device, t_ms),
            _noise.uniform(self.seed, "latency-tail-hit", device, t_ms),
            _noise.uniform(self.seed, "latency-tail", device, t_ms),
        )
        return LinkState(
            True, rsrp, sinr, latency_ms(p, sinr, draws), loss, expected_transmissions(loss)
        )

    def _require_profile(self) -> RadioProfile:
        if self.profile is None:
            raise ValueError("an ideal radio has no signal model")
        return self.profile
