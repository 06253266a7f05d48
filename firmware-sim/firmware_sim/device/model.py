"""The device around the sensors: radio, battery, clock and faults on top of the environment.

:class:`DeviceModel` decorates an environment probe (``probe(spec, t_s) ->
readings``, by default :func:`firmware_sim.signals.sample`): it takes the
clean readings, replaces the device's own readings (battery, RSRP, SINR,
latency) with the battery and radio models, lets sensors fail, stamps the
readings with the device's drifting clock, and says whether the device has
coverage and whether it sleeps. The truth of every faulty reading goes to a
:class:`FaultLog`.

Everything but the battery is a pure function of ``(seed, device, t_s)``; the
battery carries its charge from one observation to the next, so each
device's observations must come in time order, as a device lives them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from agrimatch.contract.telemetry import Reading
from firmware_sim import _noise
from firmware_sim.device import battery as _battery
from firmware_sim.device._processes import Episode
from firmware_sim.device.battery import BatteryProfile, BatteryState
from firmware_sim.device.clock import ClockProfile, DeviceClock
from firmware_sim.device.faults import FaultRates, FaultRecord, apply_faults, saturate
from firmware_sim.device.radio import LinkState, Outage, RadioModel, RadioProfile
from firmware_sim.layout import DeviceSpec

EnvironmentProbe = Callable[[DeviceSpec, float], list[Reading]]
"""Clean readings of a device's sensors at a true time: ``probe(spec, t_s)``."""

BATTERY_NOISE_V = 0.005

# Module-level defaults: the profiles are frozen, so every DeviceRealism can share them.
DEFAULT_RADIO = RadioProfile()
DEFAULT_BATTERY = BatteryProfile()
DEFAULT_CLOCK = ClockProfile()
DEFAULT_FAULTS = FaultRates()


@dataclass(frozen=True, slots=True)
class DeviceRealism:
    """What is real about the devices: each part ``None`` is ideal.

    ``DeviceRealism()`` is a realistic fleet (rare outages, a solar budget,
    drifting clocks, occasional faults); :meth:`off` is the ideal device the
    simulator had before: readings exactly as the environment gives them,
    link always up. ``forced_outages`` cut coverage over chosen windows
    whatever the radio, so a test can place an outage.
    """

    radio: RadioProfile | None = DEFAULT_RADIO
    battery: BatteryProfile | None = DEFAULT_BATTERY
    clock: ClockProfile | None = DEFAULT_CLOCK
    faults: FaultRates | None = DEFAULT_FAULTS
    forced_outages: tuple[Outage, ...] = ()

    @classmethod
    def off(cls) -> DeviceRealism:
        """Ideal devices: no radio, battery, clock or fault model, no outages."""
        return cls(radio=None, battery=None, clock=None, faults=None)

    def with_outages(self, *outages: Outage) -> DeviceRealism:
        """These settings with ``outages`` forced on top."""
        return dataclasses.replace(self, forced_outages=(*self.forced_outages, *outages))


@dataclass(frozen=True, slots=True)
class Observation:
    """What a device does and reports at one true time."""

    t_s: float  # true time
    readings: tuple[Reading, ...]  # as reported: device-stamped, faults applied; () asleep
    link_up: bool
    asleep: bool  # low-power sleep: the device neither samples nor publishes
    battery_soc: float | None  # None without a battery model
    clock_offset_s: float  # device clock minus true time
    faults: tuple[FaultRecord, ...]


class FaultLog:
    """The truth of which readings were faulty and how, in the order they were made."""

    FIELDS = (
        "device",
        "sensor",
        "kind",
        "time_ms",
        "true_time_ms",
        "clean_value",
        "reported_value",
        "onset_ms",
        "offset",
    )

    def __init__(self) -> None:
        self.records: list[FaultRecord] = []

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[FaultRecord]:
        return iter(self.records)

    def add(self, records: tuple[FaultRecord, ...] | list[FaultRecord]) -> None:
        """Append ``records``."""
        self.records.extend(records)

    def counts(self) -> dict[str, int]:
        """Faulty readings per fault kind."""
        return dict(Counter(str(r.kind) for r in self.records))

    def as_dicts(self) -> list[dict[str, Any]]:
        """One plain dict per faulty reading (kind as its string), for JSON or a frame."""
        return [
            {name: _plain(getattr(record, name)) for name in self.FIELDS} for record in self.records
        ]

    def csv_text(self) -> str:
        """The log as CSV text."""
        buffer = io.StringIO()
        self._write(buffer)
        return buffer.getvalue()

    def _write(self, file: TextIO) -> None:
        writer = csv.DictWriter(file, fieldnames=self.FIELDS)
        writer.writeheader()
        writer.writerows(self.as_dicts())


def _plain(value: object) -> object:
    return str(value) if isinstance(value, str) else value


DEFAULT_REALISM = DeviceRealism()


class DeviceModel:
    """A fleet's devices as they really behave, around an environment probe.

    Callable as a probe (``model(spec, t_s) -> readings``); :meth:`observe` says
    more (coverage, sleep, faults). ``fault_log`` collects the truth of every
    fault reported by :meth:`observe`.
    """

    def __init__(
        self,
        environment: EnvironmentProbe,
        seed: int,
        realism: DeviceRealism = DEFAULT_REALISM,
    ) -> None:
        self.environment = environment
        self.seed = seed
        self.realism = realism
        self.radio = RadioModel(seed, self.realism.radio, self.realism.forced_outages)
        self.clock = (
            None
            if self.realism.clock is None
            else DeviceClock(seed, self.realism.clock, self.radio.link_up)
        )
        self.fault_log = FaultLog()
        self._batteries: dict[str, BatteryState] = {}
        self._frozen: dict[tuple[str, int], dict[str, float]] = {}

    # --- coverage, for the node's link --------------------------------------------------

    def link_up(self, device: str, t_s: float) -> bool:
        """Whether ``device`` has coverage at true time ``t_s``."""
        return self.radio.link_up(device, t_s)

    def next_outage(self, device: str, after_s: float) -> Episode | None:
        """The first coverage outage of ``device`` ending after ``after_s`` (may be under way)."""
        return self.radio.next_outage(device, after_s)

    def battery(self, device: str) -> BatteryState | None:
        """The device's battery as last observed (None before or without a battery model)."""
        return self._batteries.get(device)

    # --- readings -----------------------------------------------------------------------

    def __call__(self, spec: DeviceSpec, t_s: float) -> list[Reading]:
        """The probe form: what the device reports at ``t_s`` (nothing while asleep)."""
        return list(self.observe(spec, t_s).readings)

    def observe(self, spec: DeviceSpec, t_s: float) -> Observation:
        """What the device does at true time ``t_s``: its readings, link and power state.

        Advances the device's battery to ``t_s`` and records faults in ``fault_log``.
        """
        device = spec.device
        clean = self.environment(spec, t_s)
        link = self.radio.link(device, t_s)
        state = self._power(device, t_s, clean, link)
        offset_s = 0.0 if self.clock is None else self.clock.offset_s(device, t_s)
        if state is not None and state.asleep:
            return Observation(t_s, (), link.up, True, state.soc, offset_s, ())

        readings = self._device_readings(device, t_s, clean, link, state)
        records: list[FaultRecord] = []
        if self.realism.faults is not None:
            readings, records = apply_faults(
                self.seed,
                device,
                t_s,
                readings,
                self.realism.faults,
                lambda sensor, onset_s: self._frozen_value(spec, sensor, onset_s),
            )
        if self.clock is not None:
            stamp_ms = self.clock.stamp_ms(device, t_s)
            readings = [Reading(r.sensor, stamp_ms, r.value) for r in readings]
            records = [dataclasses.replace(r, time_ms=stamp_ms) for r in records]
        self.fault_log.add(records)
        return Observation(
            t_s,
            tuple(readings),
            link.up,
            False,
            None if state is None else state.soc,
            offset_s,
            tuple(records),
        )

    def _power(
        self, device: str, t_s: float, clean: list[Reading], link: LinkState
    ) -> BatteryState | None:
        """Advance the device's battery to ``t_s``; spend this sample's energy if awake."""
        profile = self.realism.battery
        if profile is None:
            return None
        # The panel sees the real sun: the clean pyranometer reading, before any fault.
        solar = next((r.value for r in clean if r.sensor == "solar_rad"), 0.0)
        state = self._batteries.get(device)
        if state is None:
            low, high = profile.initial_soc
            u = _noise.uniform(self.seed, "battery-initial", device, 0)
            state = BatteryState(t_s, low + (high - low) * u, False, solar)
        state = _battery.advance(state, profile, t_s, solar, searching=not link.up)
        if not state.asleep:
            energy = _battery.sample_energy_j(profile, link.expected_transmissions)
            state = _battery.spend(state, profile, energy)
        self._batteries[device] = state
        return state

    def _device_readings(
        self,
        device: str,
        t_s: float,
        clean: list[Reading],
        link: LinkState,
        state: BatteryState | None,
    ) -> list[Reading]:
        """``clean`` with battery and radio readings from the device's own models."""
        own: dict[str, float | None] = {}
        if state is not None:
            noise = _noise.normal(self.seed, "battery-noise", device, round(t_s * 1000))
            own["battery"] = _battery.open_circuit_voltage(state.soc) + BATTERY_NOISE_V * noise
        if self.realism.radio is not None:
            own["rsrp"] = link.rsrp_dbm
            own["sinr"] = link.sinr_db
            own["latency"] = link.latency_ms  # None: nothing to measure without a link
        readings = []
        for reading in clean:
            if reading.sensor not in own:
                readings.append(reading)
                continue
            value = own[reading.sensor]
            if value is not None:
                value = saturate(reading.sensor, value)
                readings.append(Reading(reading.sensor, reading.time_ms, value))
        return readings

    def _frozen_value(self, spec: DeviceSpec, sensor: str, onset_s: float) -> float | None:
        """The clean value ``sensor`` had when it froze at ``onset_s`` (memoised per spell)."""
        key = (spec.device, round(onset_s * 1000))
        values = self._frozen.get(key)
        if values is None:
            values = {r.sensor: r.value for r in self.environment(spec, onset_s)}
            self._frozen[key] = values
        return values.get(sensor)
