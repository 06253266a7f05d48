"""A solar-charged Li-ion battery: state of charge in time, voltage, low-power sleep. Pure.

The battery is the one part of a device whose present depends on its past
(a cloudy week drains it, whatever the weather today), so it is a small state
advanced by :func:`advance` from one observation to the next: solar charging
(the panel sees the sun the device's own pyranometer measures) against a base
load, the radio's search for a cell during outages, and the energy of each
sample and uplink. Below ``sleep_below_soc`` the device goes to low-power
sleep (no sampling, no uplink) until the sun has charged it past
``wake_above_soc``: the gap between the two keeps it from flapping at dusk.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

STANDARD_IRRADIANCE_W_M2 = 1000.0  # panels are rated at this irradiance

# Open-circuit voltage of a Li-ion (NMC) cell against state of charge: flat in the
# middle, steep at both ends, which is why voltage alone says little at mid-charge.
_OCV_SOC = (0.0, 0.05, 0.10, 0.20, 0.40, 0.60, 0.80, 0.95, 1.0)
_OCV_V = (3.00, 3.45, 3.60, 3.68, 3.76, 3.86, 3.98, 4.10, 4.18)


@dataclass(frozen=True, slots=True)
class BatteryProfile:
    """A node's power budget (the defaults: an 18650-class pack and a 2 W panel).

    At a 60 s interval an awake node spends about 1.8 Wh a day; a clear summer
    day brings in several times that, a winter week under cloud does not.
    """

    capacity_wh: float = 12.0
    panel_peak_w: float = 2.0  # at 1000 W/m2
    charge_efficiency: float = 0.75  # MPPT, charger and cell losses together
    max_charge_w: float = 6.0  # about C/2 for the cell
    base_power_w: float = 0.02  # MCU and modem in power-saving mode between samples
    search_power_w: float = 0.12  # extra while the modem scans for a lost cell
    sleep_power_w: float = 0.003  # low-power sleep: modem off, RTC only
    sample_energy_j: float = 0.3  # sensor warm-up and reading
    transmit_energy_j: float = 3.0  # one uplink at good signal (wake, attach, send)
    sleep_below_soc: float = 0.10
    wake_above_soc: float = 0.30
    initial_soc: tuple[float, float] = (0.55, 0.95)  # drawn uniformly per device

    def __post_init__(self) -> None:
        if not 0 <= self.sleep_below_soc < self.wake_above_soc <= 1:
            raise ValueError("need 0 <= sleep_below_soc < wake_above_soc <= 1")
        if not self.capacity_wh > 0:
            raise ValueError("capacity_wh must be positive")


@dataclass(frozen=True, slots=True)
class BatteryState:
    """The battery at ``t_s``: charge, whether the device sleeps, and the sun it last saw."""

    t_s: float
    soc: float  # state of charge, 0..1
    asleep: bool = False
    solar_w_m2: float = 0.0


def open_circuit_voltage(soc: float) -> float:
    """Cell voltage at rest for a state of charge (0..1), interpolated on the Li-ion curve."""
    soc = min(1.0, max(0.0, soc))
    i = min(len(_OCV_SOC) - 2, max(0, bisect.bisect_right(_OCV_SOC, soc) - 1))
    s0, s1 = _OCV_SOC[i], _OCV_SOC[i + 1]
    v0, v1 = _OCV_V[i], _OCV_V[i + 1]
    return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)


def charge_power_w(profile: BatteryProfile, solar_w_m2: float) -> float:
    """Power the panel puts into the battery under ``solar_w_m2`` of irradiance."""
    panel_w = profile.panel_peak_w * max(0.0, solar_w_m2) / STANDARD_IRRADIANCE_W_M2
    return min(profile.max_charge_w, panel_w * profile.charge_efficiency)


def advance(
    state: BatteryState,
    profile: BatteryProfile,
    t_s: float,
    solar_w_m2: float,
    *,
    searching: bool = False,
) -> BatteryState:
    """The battery at ``t_s``, from ``state``: charge and base load over the time between.

    Irradiance is taken as varying linearly between the two observations
    (trapezoid), so the result does not depend much on the sampling interval.
    ``searching`` adds the modem's cell search (a coverage outage) to the load
    of an awake device. Whether the device sleeps is decided on the new charge.
    A ``t_s`` not after ``state.t_s`` changes only the remembered irradiance.
    """
    dt_s = max(0.0, t_s - state.t_s)
    charge_w = (charge_power_w(profile, state.solar_w_m2) + charge_power_w(profile, solar_w_m2)) / 2
    if state.asleep:
        load_w = profile.sleep_power_w
    else:
        load_w = profile.base_power_w + (profile.search_power_w if searching else 0.0)
    soc = _clamp(state.soc + (charge_w - load_w) * dt_s / 3600.0 / profile.capacity_wh)
    asleep = state.asleep
    if asleep and soc >= profile.wake_above_soc:
        asleep = False
    elif not asleep and soc < profile.sleep_below_soc:
        asleep = True
    return BatteryState(max(t_s, state.t_s), soc, asleep, max(0.0, solar_w_m2))


def spend(state: BatteryState, profile: BatteryProfile, energy_j: float) -> BatteryState:
    """``state`` after spending ``energy_j`` at once (a sample, an uplink)."""
    return replace(state, soc=_clamp(state.soc - energy_j / 3600.0 / profile.capacity_wh))


def sample_energy_j(profile: BatteryProfile, transmissions: float) -> float:
    """Energy of one sample and its uplink, with ``transmissions`` radio attempts on average.

    The uplink is charged when the sample is taken, even if an outage delays
    it: every pack is sent once in the end (evictions aside).
    """
    return profile.sample_energy_j + profile.transmit_energy_j * transmissions


def _clamp(soc: float) -> float:
    return min(1.0, max(0.0, soc))
