"""The device around the sensors: radio, outages, battery, clock, faults, and a node living them.

The models are pure (the same answer in any process and any order), so most
tests read them directly; the last ones run nodes against a real Mosquitto on
a clock 600 times faster than real time, with outages forced over chosen
windows.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import math
import statistics
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import pairwise

import paho.mqtt.client as paho
import pytest

from agrimatch.clock import SimulatedClock
from agrimatch.contract import SENSORS
from agrimatch.contract.telemetry import Reading, decode_telemetry
from agrimatch.contract.topics import DeviceAddress, TopicKind, parse_topic
from agrimatch.mqtt import MqttEndpoint, make_paho_client
from firmware_sim import DeviceSpec, Fleet, plan_fleet, sample
from firmware_sim.device import (
    ENVIRONMENT_SENSORS,
    BatteryProfile,
    BatteryState,
    ClockProfile,
    DeviceClock,
    DeviceModel,
    DeviceRealism,
    FaultKind,
    FaultRates,
    Outage,
    RadioModel,
    RadioProfile,
    apply_faults,
    battery,
    open_circuit_voltage,
    packet_loss_probability,
)
from firmware_sim.device._processes import gauss_markov
from ingest.deadletter import MemoryDeadLetterSink
from ingest.pipeline import InboundMessage, TelemetryPipeline
from tests.services import MosquittoServer

SEED = 23
START_S = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
HOUR_S = 3600.0
DAY_S = 86_400.0
YEAR_S = 365.2422 * DAY_S


def _spec(device: str = "dev-0001") -> DeviceSpec:
    [spec] = plan_fleet(1, SEED)
    return dataclasses.replace(spec, address=DeviceAddress("farm-01", "field-01", device))


def _env(spec: DeviceSpec, t_s: float) -> list[Reading]:
    return sample(spec, SEED, t_s)


def _dark(spec: DeviceSpec, t_s: float) -> list[Reading]:
    """The environment with no sun at all: a battery that cannot charge."""
    return [
        Reading(r.sensor, r.time_ms, 0.0) if r.sensor == "solar_rad" else r
        for r in sample(spec, SEED, t_s)
    ]


def _flat(t_ms: int) -> list[Reading]:
    """Mid-range readings of every environment sensor at ``t_ms``."""
    return [
        Reading(name, t_ms, (SENSORS[name].minimum + SENSORS[name].maximum) / 2)
        for name in ENVIRONMENT_SENSORS
    ]


# --- the ideal device and determinism ----------------------------------------------------


def test_realism_off_reports_exactly_what_the_environment_gives():
    spec = _spec()
    model = DeviceModel(_env, SEED, DeviceRealism.off())
    for k in range(50):
        t_s = START_S + 60 * k + spec.phase_s
        seen = model.observe(spec, t_s)
        assert list(seen.readings) == sample(spec, SEED, t_s)
        assert seen.link_up and not seen.asleep and seen.faults == ()
        assert seen.clock_offset_s == 0.0
    assert len(model.fault_log) == 0


def test_two_models_with_the_same_seed_tell_the_same_story():
    specs = plan_fleet(3, SEED)
    a, b = DeviceModel(_env, SEED), DeviceModel(_env, SEED)
    times = [START_S + 600 * k for k in range(300)]
    for t_s in times:
        for spec in specs:
            assert a.observe(spec, t_s) == b.observe(spec, t_s)
    assert a.fault_log.as_dicts() == b.fault_log.as_dicts()


def test_radio_values_do_not_depend_on_the_order_they_are_asked_in():
    forward, backward = RadioModel(SEED), RadioModel(SEED)
    times = [START_S + 97.0 * k for k in range(400)]
    ahead = [forward.link("dev-0001", t) for t in times]
    behind = [backward.link("dev-0001", t) for t in reversed(times)]
    assert ahead == behind[::-1]


# --- radio --------------------------------------------------------------------------------


def test_devices_see_plausible_rural_signal_levels():
    radio = RadioModel(SEED)
    links = [radio.link(f"dev-{i:04d}", START_S) for i in range(400)]
    rsrp = [link.rsrp_dbm for link in links if link.up]
    sinr = [link.sinr_db for link in links if link.up]
    assert -105 < statistics.median(rsrp) < -80
    assert min(rsrp) > -156 and max(rsrp) < -31
    assert 0 < statistics.median(sinr) < 30


def test_slow_fading_is_a_gauss_markov_process_correlated_over_its_correlation_time():
    tau_s = 1800.0
    xs = [gauss_markov(SEED, "fade", "dev", START_S + 60.0 * k, tau_s) for k in range(40_000)]
    assert abs(statistics.fmean(xs)) < 0.15
    assert 0.85 < statistics.pstdev(xs) < 1.15

    def autocorrelation(lag: int) -> float:
        return statistics.correlation(xs[:-lag], xs[lag:])

    assert autocorrelation(1) > 0.95  # one minute apart: nearly the same fade
    assert abs(autocorrelation(30) - math.exp(-1)) < 0.1  # one correlation time apart
    assert abs(autocorrelation(300)) < 0.15  # ten: unrelated


def test_packet_loss_falls_as_sinr_rises():
    losses = [packet_loss_probability(sinr) for sinr in (-10, -3, 0, 5, 10, 20)]
    assert losses == sorted(losses, reverse=True)
    assert losses[0] > 0.9 and abs(losses[1] - 0.5) < 1e-9 and losses[-1] < 1e-5


def test_latency_is_lognormal_with_a_heavy_tail_and_worse_at_low_sinr():
    radio = RadioModel(SEED, RadioProfile(outages_per_year=0.0))
    latencies = [radio.link("dev-0001", START_S + 60.0 * k).latency_ms for k in range(20_000)]
    values = sorted(v for v in latencies if v is not None)
    median = values[len(values) // 2]
    p999 = values[int(len(values) * 0.999)]
    assert 10 < median < 80
    assert p999 > 4 * median  # the tail: stalls and retransmissions
    good = [radio.link(f"dev-{i:04d}", START_S).latency_ms for i in range(300)]
    sinr = [radio.link(f"dev-{i:04d}", START_S).sinr_db for i in range(300)]
    poor = [lat for lat, s in zip(good, sinr, strict=True) if s < 3]
    fine = [lat for lat, s in zip(good, sinr, strict=True) if s > 20]
    assert poor and fine
    assert statistics.median(x for x in poor if x) > statistics.median(x for x in fine if x)


def test_coverage_outages_are_rare_and_last_hours_to_days():
    profile = RadioProfile(outages_per_year=12.0)
    radio = RadioModel(SEED, profile)
    outages = []
    for device in (f"dev-{i:04d}" for i in range(20)):
        t = START_S
        while (
            outage := radio.next_outage(device, t)
        ) is not None and outage.start_s < START_S + 2 * YEAR_S:
            outages.append(outage)
            t = outage.end_s
    hours = [o.duration_s / HOUR_S for o in outages]
    expected = 20 * 2 * 12.0
    assert abs(len(outages) - expected) < 4 * math.sqrt(expected)
    assert min(hours) >= profile.outage_min_h and max(hours) <= profile.outage_max_h
    assert 4 < statistics.median(hours) < 16
    assert max(hours) > 48  # some last days
    # Down a few percent of the time at most.
    assert sum(hours) / (20 * 2 * YEAR_S / HOUR_S) < 0.05


def test_the_link_is_down_exactly_inside_an_outage_and_the_modem_measures_nothing_there():
    radio = RadioModel(SEED, RadioProfile(outages_per_year=50.0))
    outage = radio.next_outage("dev-0007", START_S)
    assert outage is not None
    assert radio.link_up("dev-0007", outage.start_s - 1)
    assert not radio.link_up("dev-0007", outage.start_s)
    assert not radio.link_up("dev-0007", outage.end_s - 1)
    inside = radio.link("dev-0007", (outage.start_s + outage.end_s) / 2)
    assert not inside.up and inside.latency_ms is None and inside.rsrp_dbm < -130


def test_a_forced_outage_cuts_only_its_device_and_only_over_its_window():
    window = Outage(START_S + 300, START_S + 900, device="dev-0002")
    radio = RadioModel(SEED, None, (window,))
    assert radio.link_up("dev-0002", START_S + 299.999)
    assert not radio.link_up("dev-0002", START_S + 300)
    assert not radio.link_up("dev-0002", START_S + 899.999)
    assert radio.link_up("dev-0002", START_S + 900)
    assert radio.link_up("dev-0001", START_S + 600)
    found = radio.next_outage("dev-0002", START_S)
    assert found is not None and (found.start_s, found.end_s) == (START_S + 300, START_S + 900)
    assert radio.next_outage("dev-0001", START_S) is None


# --- battery ------------------------------------------------------------------------------


def test_the_li_ion_voltage_rises_with_charge_within_the_cells_range():
    volts = [open_circuit_voltage(k / 100) for k in range(101)]
    assert volts == sorted(volts)
    assert volts[0] == pytest.approx(3.0) and volts[-1] == pytest.approx(4.18)


def _sun_w_m2(t_s: float) -> float:
    """A clear day: sunrise at 06:00, noon at 900 W/m2, sunset at 18:00 (time of day of t_s)."""
    hour = (t_s % DAY_S) / HOUR_S
    return 900.0 * max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0))


def test_the_battery_drains_at_night_and_recharges_by_day():
    profile = BatteryProfile()
    midnight = START_S  # a UTC midnight; the sun above is in the same hours
    state = BatteryState(midnight, 0.5, False, 0.0)
    soc_at: dict[float, float] = {}
    for k in range(1, 2 * 1440 + 1):
        t = midnight + 60.0 * k
        state = battery.advance(state, profile, t, _sun_w_m2(t))
        state = battery.spend(state, profile, battery.sample_energy_j(profile, 1.0))
        soc_at[t] = state.soc
    dawn, dusk, next_dawn = midnight + 6 * HOUR_S, midnight + 18 * HOUR_S, midnight + 30 * HOUR_S
    assert soc_at[dusk] > soc_at[dawn] + 0.2  # a clear day charges it
    assert soc_at[next_dawn] < soc_at[dusk]  # the night drains it
    assert soc_at[midnight + 6 * HOUR_S] < 0.5  # the first night, from midnight to dawn


def test_below_the_threshold_the_device_sleeps_until_the_sun_charges_it_past_wake():
    profile = BatteryProfile(capacity_wh=1.0)
    state = BatteryState(START_S, profile.sleep_below_soc + 0.02, False, 0.0)
    t = START_S
    while not state.asleep:  # a dark night of sampling
        t += 60.0
        state = battery.advance(state, profile, t, 0.0)
        state = battery.spend(state, profile, battery.sample_energy_j(profile, 1.0))
        assert t < START_S + DAY_S
    assert state.soc < profile.sleep_below_soc
    # Asleep, it drains slowly; the sun has to bring it past wake_above_soc, not just the threshold.
    woke_at = None
    for k in range(1, 3 * 1440):
        t2 = START_S + 60.0 * k
        if t2 <= t:
            continue
        state = battery.advance(state, profile, t2, _sun_w_m2(t2))
        if not state.asleep:
            woke_at = t2
            break
        assert state.soc < profile.wake_above_soc
    assert woke_at is not None and state.soc >= profile.wake_above_soc


def test_a_sleeping_device_reports_nothing_and_says_so():
    spec = _spec()
    realism = DeviceRealism(
        radio=None,
        clock=None,
        faults=None,
        battery=BatteryProfile(capacity_wh=0.05, initial_soc=(0.2, 0.2)),
    )
    model = DeviceModel(_dark, SEED, realism)
    seen = [model.observe(spec, START_S + 60.0 * k) for k in range(200)]
    awake = [s for s in seen if not s.asleep]
    asleep = [s for s in seen if s.asleep]
    assert awake and asleep
    assert all(s.readings == () for s in asleep)
    assert seen.index(asleep[0]) == len(awake)  # once asleep in the dark, it stays asleep
    battery_v = [next(r.value for r in s.readings if r.sensor == "battery") for s in awake]
    assert battery_v[0] > battery_v[-1]  # falling with the charge


# --- clock ---------------------------------------------------------------------------------


def test_clock_drift_is_bounded_by_the_resync_interval():
    profile = ClockProfile(drift_ppm_sigma=50.0, resync_interval_s=6 * HOUR_S, resync_error_ms=10.0)
    clocks = DeviceClock(SEED, profile)
    for device in (f"dev-{i:04d}" for i in range(20)):
        ppm = clocks.drift_ppm(device)
        bound_s = abs(ppm) * 1e-6 * profile.resync_interval_s + 5 * profile.resync_error_ms / 1000
        offsets = [clocks.offset_s(device, START_S + 300.0 * k) for k in range(600)]
        assert max(abs(o) for o in offsets) <= bound_s
    # Between resyncs the error grows at the crystal's rate, and a resync sets it right.
    device = "dev-0003"
    synced = clocks.last_resync_s(device, START_S + DAY_S)
    before = clocks.offset_s(device, synced - 1)
    after = clocks.offset_s(device, synced + 1)
    assert abs(after) < 5 * profile.resync_error_ms / 1000 < abs(before)


def test_a_resync_missed_in_an_outage_lets_the_error_keep_growing():
    profile = ClockProfile(drift_ppm_sigma=50.0, resync_interval_s=HOUR_S, resync_error_ms=1.0)
    outage = Outage(START_S, START_S + 10 * HOUR_S)
    radio = RadioModel(SEED, None, (outage,))
    clocks = DeviceClock(SEED, profile, radio.link_up)
    device = "dev-0001"
    ppm = clocks.drift_ppm(device)
    end = START_S + 10 * HOUR_S - 1
    assert clocks.last_resync_s(device, end) < START_S
    assert abs(clocks.offset_s(device, end)) > abs(ppm) * 1e-6 * 9 * HOUR_S
    assert abs(clocks.offset_s(device, end + 2 * HOUR_S)) < abs(ppm) * 1e-6 * HOUR_S + 0.01


def test_readings_carry_the_device_clock_and_the_truth_the_true_time():
    spec = _spec()
    realism = DeviceRealism(
        radio=None,
        battery=None,
        clock=ClockProfile(drift_ppm_sigma=100.0),
        faults=FaultRates(dropout_per_reading=0.2),
    )
    model = DeviceModel(_env, SEED, realism)
    t_s = START_S + 5 * HOUR_S + spec.phase_s
    seen = model.observe(spec, t_s)
    stamp_ms = round((t_s + seen.clock_offset_s) * 1000)
    assert stamp_ms != round(t_s * 1000)
    assert {r.time_ms for r in seen.readings} == {stamp_ms}
    for _ in range(30):
        t_s += 60.0
        model.observe(spec, t_s)
    assert model.fault_log.records
    for record in model.fault_log:
        assert record.time_ms != record.true_time_ms


# --- faults ----------------------------------------------------------------------------------


def test_spikes_and_dropouts_appear_at_the_configured_rate():
    rates = FaultRates(
        spike_per_reading=0.01, dropout_per_reading=0.02, stuck_per_day=0.0, drift_per_day=0.0
    )
    times = [START_S + 60.0 * k for k in range(20_000)]
    counts = {FaultKind.SPIKE: 0, FaultKind.DROPOUT: 0}
    readings = 0
    for t_s in times:
        clean = _flat(round(t_s * 1000))
        out, records = apply_faults(SEED, "dev-0001", t_s, clean, rates)
        readings += len(clean)
        for record in records:
            counts[record.kind] += 1
            if record.kind is FaultKind.SPIKE:
                assert record.reported_value != record.clean_value
            else:
                assert record.reported_value is None
        assert len(out) == len(clean) - sum(r.kind is FaultKind.DROPOUT for r in records)
    for kind, rate in ((FaultKind.SPIKE, 0.01 * (1 - 0.02)), (FaultKind.DROPOUT, 0.02)):
        expected = rate * readings
        assert abs(counts[kind] - expected) < 4 * math.sqrt(expected), kind


def test_stuck_sensors_begin_at_the_configured_rate_and_hold_their_value():
    rates = FaultRates(
        0.0, 0.0, stuck_per_day=0.5, stuck_median_h=2.0, drift_per_day=0.0, sensors=("air_temp",)
    )
    spec = _spec()
    onsets: dict[int, set[float]] = {}
    days = 300
    for k in range(days * 24 * 6):  # every 10 minutes
        t_s = START_S + 600.0 * k
        clean = [Reading("air_temp", round(t_s * 1000), 20.0 + math.sin(k / 10))]
        _, records = apply_faults(SEED, spec.device, t_s, clean, rates, lambda s, onset: 42.0)
        for record in records:
            assert record.kind is FaultKind.STUCK and record.reported_value == 42.0
            assert record.onset_ms is not None
            onsets.setdefault(record.onset_ms, set()).add(record.reported_value)
    mean_spell_days = rates.stuck_law.mean_s / DAY_S
    expected = days / (1 / 0.5 + mean_spell_days)
    # Spells shorter than the 10-minute grid may be missed; allow for that below.
    assert (
        0.8 * expected - 4 * math.sqrt(expected) < len(onsets) < expected + 4 * math.sqrt(expected)
    )


def test_a_drift_grows_steadily_from_its_onset():
    rates = FaultRates(
        0.0,
        0.0,
        0.0,
        12.0,
        drift_per_day=0.05,
        drift_median_days=5.0,
        sensors=("soil_moisture_10cm",),
    )
    offsets: list[tuple[int, float]] = []
    for k in range(400 * 24):  # hourly for 400 days
        t_s = START_S + HOUR_S * k
        clean = [Reading("soil_moisture_10cm", round(t_s * 1000), 30.0)]
        _, records = apply_faults(SEED, "dev-0004", t_s, clean, rates)
        offsets += [(r.onset_ms or 0, r.offset or 0.0) for r in records]
    assert offsets
    by_spell: dict[int, list[float]] = {}
    for onset, offset in offsets:
        by_spell.setdefault(onset, []).append(abs(offset))
    assert len(by_spell) >= 3
    for spell in by_spell.values():
        assert spell == sorted(spell)


def test_faulty_values_stay_within_the_sensors_physical_range():
    rates = FaultRates(
        spike_per_reading=0.2, dropout_per_reading=0.0, stuck_per_day=0.0, drift_per_day=0.0
    )
    spec = _spec()
    for k in range(2000):
        t_s = START_S + 60.0 * k
        out, _ = apply_faults(SEED, spec.device, t_s, sample(spec, SEED, t_s), rates)
        for r in out:
            assert SENSORS[r.sensor].minimum <= r.value <= SENSORS[r.sensor].maximum


def test_the_fault_log_exports_as_dicts_and_csv():
    spec = _spec()
    realism = DeviceRealism(faults=FaultRates(spike_per_reading=0.05, dropout_per_reading=0.05))
    model = DeviceModel(_env, SEED, realism)
    for k in range(100):
        model.observe(spec, START_S + 60.0 * k)
    rows = model.fault_log.as_dicts()
    assert rows and len(rows) == len(model.fault_log)
    assert {row["kind"] for row in rows} <= {"spike", "dropout", "stuck", "drift"}
    assert model.fault_log.counts() == {
        kind: sum(row["kind"] == kind for row in rows) for kind in {row["kind"] for row in rows}
    }
    parsed = list(csv.DictReader(io.StringIO(model.fault_log.csv_text())))
    assert len(parsed) == len(rows)
    assert parsed[0]["device"] == spec.device and parsed[0]["kind"] == rows[0]["kind"]


# --- nodes on a real broker ------------------------------------------------------------------

SPEED = 600.0


@pytest.fixture
def endpoint(mosquitto_server: MosquittoServer) -> MqttEndpoint:
    return MqttEndpoint.from_url(mosquitto_server.url)


@pytest.fixture
def tag(endpoint: MqttEndpoint) -> Iterator[str]:
    """A tag of this test's own; its devices' retained statuses are cleared afterwards."""
    value = f"d{uuid.uuid4().hex[:6]}"
    yield value
    sweeper = make_paho_client(endpoint, f"sweeper-{value}")
    seen: set[str] = set()
    sweeper.on_message = lambda c, u, m: seen.add(m.topic) if m.retain else None
    sweeper.connect(endpoint.host, endpoint.port)
    sweeper.loop_start()
    sweeper.subscribe(f"agrimatch/v1/{value}-farm/#", qos=1)
    threading.Event().wait(0.3)
    for topic in sorted(seen):
        sweeper.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    sweeper.disconnect()
    sweeper.loop_stop()


class Heard:
    """A paho subscriber: what one test's devices published, with the clock time it arrived."""

    def __init__(self, endpoint: MqttEndpoint, tag: str, clock: SimulatedClock) -> None:
        self.telemetry: list[tuple[float, str, bytes]] = []  # (arrival clock s, device, payload)
        self.statuses: list[tuple[float, str, dict]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = make_paho_client(endpoint, f"heard-{tag}")

        def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
            address, kind = parse_topic(message.topic)
            if not message.payload:
                return
            with self._lock:
                if kind is TopicKind.TELEMETRY:
                    self.telemetry.append((clock.now(), address.device, bytes(message.payload)))
                elif kind is TopicKind.STATUS:
                    self.statuses.append((clock.now(), address.device, json.loads(message.payload)))

        self.client.on_message = on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(endpoint.host, endpoint.port)
        self.client.subscribe(f"agrimatch/v1/{tag}-farm/#", qos=1)
        self.client.loop_start()
        assert subscribed.wait(10)

    def sample_times(self, device: str) -> list[tuple[float, int]]:
        """(arrival clock s, sample time ms) of ``device``'s packs, in arrival order."""
        with self._lock:
            heard = [(at, payload) for at, d, payload in self.telemetry if d == device]
        out = []
        for at, payload in heard:
            decoded = decode_telemetry(payload, device, now=START_S + DAY_S)
            assert decoded.problems == []
            out.append((at, decoded.readings[0].time_ms))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _tagged(tag: str, devices: int) -> list[DeviceSpec]:
    return [
        dataclasses.replace(
            spec, address=DeviceAddress(f"{tag}-farm", spec.address.field, f"{tag}-{spec.device}")
        )
        for spec in plan_fleet(devices, SEED)
    ]


def _grid_ms(spec: DeviceSpec, start_s: float, end_s: float) -> list[int]:
    """The device's sample times (ms) in ``[start_s, end_s)``."""
    first = math.ceil((start_s - spec.phase_s) / spec.interval_s)
    times = []
    k = first
    while (t := k * spec.interval_s + spec.phase_s) < end_s:
        times.append(round(t * 1000))
        k += 1
    return times


async def _settle(predicate: Callable[[], bool], timeout_s: float) -> bool:
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


@pytest.mark.services
@pytest.mark.timeout(60)
def test_an_outage_buffers_readings_and_replays_them_after_reconnect_in_time_order(
    endpoint, tag, embedded_store
):
    specs = _tagged(tag, 2)
    victim = specs[0]
    clock = SimulatedClock(START_S, SPEED)
    outage = Outage(START_S + 300.0, START_S + 900.0, device=victim.device)
    acked: list[int] = []  # the victim's packs the broker acknowledged (sample times)
    fleet = Fleet(
        specs,
        endpoint,
        clock,
        SEED,
        on_publish=lambda a, r: acked.append(r[0].time_ms) if a == victim.address else None,
        realism=DeviceRealism.off().with_outages(outage),
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )
    heard = Heard(endpoint, tag, clock)
    try:
        stats = asyncio.run(fleet.run(1500.0))
        assert asyncio.run(
            _settle(lambda: {t for _, t in heard.sample_times(victim.device)} >= set(acked), 5)
        )
        arrivals = heard.sample_times(victim.device)
        statuses = [s for _, d, s in heard.statuses if d == victim.device]
        with heard._lock:
            messages = [(d, p) for _, d, p in heard.telemetry if d == victim.device]
    finally:
        heard.close()

    node = stats.per_device[victim.device]
    in_outage = _grid_ms(victim, outage.start_s, outage.end_s)
    assert len(in_outage) == 10
    assert node.outages == 1 and stats.outages == 1
    assert node.buffered >= len(in_outage) and node.replayed == node.buffered
    assert node.evicted == node.undelivered == 0
    # Nothing sampled in the outage left before it ended...
    for arrived_s, t_ms in arrivals:
        if outage.start_s * 1000 <= t_ms < outage.end_s * 1000:
            assert arrived_s >= outage.end_s
    # ...and then it all came, oldest first, with the original sample times.
    times = [t for _, t in arrivals]
    assert times == sorted(times)
    assert set(in_outage) <= set(times)
    assert [s["state"] for s in statuses][:3] == ["online", "offline", "online"]
    assert stats.per_device[specs[1].device].outages == 0

    # Through ingest into the store: one point per sample time, on the grid, in order.
    pipeline = TelemetryPipeline(embedded_store, MemoryDeadLetterSink(), clock)
    topic = victim.address.telemetry_topic
    for _, payload in messages:
        report = pipeline.process([InboundMessage(topic, payload, clock.now())])
        assert report.acked and all(o.accepted and not o.problems for o in report.outcomes)
    stored = [
        p.time_ms
        for p in embedded_store.query_points(
            "telemetry",
            round(START_S * 1000),
            round((START_S + DAY_S) * 1000),
            {"device": victim.device},
        )
    ]
    assert stored == sorted(set(times)) == sorted(set(acked))
    assert {b - a for a, b in pairwise(stored)} == {60_000}  # no hole, no shift


@pytest.mark.services
@pytest.mark.timeout(60)
def test_an_outage_longer_than_the_buffer_evicts_the_oldest_and_counts_them(endpoint, tag):
    specs = _tagged(tag, 1)
    victim = specs[0]
    clock = SimulatedClock(START_S, SPEED)
    outage = Outage(START_S + 300.0, START_S + 900.0)
    sent: list[int] = []
    fleet = Fleet(
        specs,
        endpoint,
        clock,
        SEED,
        on_publish=lambda address, readings: sent.append(readings[0].time_ms),
        realism=DeviceRealism.off().with_outages(outage),
        buffer_capacity=3,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )
    stats = asyncio.run(fleet.run(1500.0))
    node = stats.per_device[victim.device]
    assert node.evicted >= 7 and stats.evicted == node.evicted
    assert node.sampled == node.messages_sent + node.evicted + node.undelivered
    assert node.undelivered == 0
    # Every sample time of the run, first to last (the last ones are sent after the outage).
    grid = _grid_ms(victim, min(sent) / 1000, max(sent) / 1000 + 1)
    lost = sorted(set(grid) - set(sent))
    assert len(lost) == node.evicted
    # The evicted are the oldest of the outage's samples; the survivors are the newest.
    assert lost == grid[grid.index(lost[0]) : grid.index(lost[0]) + len(lost)]
    assert lost[0] >= outage.start_s * 1000
    after = [t for t in sent if t > lost[-1]]
    assert len(after) >= 3 and min(after) == lost[-1] + 60_000


@pytest.mark.services
@pytest.mark.timeout(60)
def test_a_node_with_a_flat_battery_sleeps_and_its_status_says_so(endpoint, tag):
    specs = _tagged(tag, 1)
    device = specs[0].device
    clock = SimulatedClock(START_S, SPEED)
    realism = DeviceRealism(
        radio=None,
        clock=None,
        faults=None,
        battery=BatteryProfile(capacity_wh=0.05, initial_soc=(0.16, 0.16)),
    )
    fleet = Fleet(specs, endpoint, clock, SEED, probe=_dark, realism=realism)
    heard = Heard(endpoint, tag, clock)
    try:
        stats = asyncio.run(fleet.run(1200.0))
        assert asyncio.run(
            _settle(lambda: any(s["state"] == "offline" for _, d, s in heard.statuses), 5)
        )
        statuses = [s for _, d, s in heard.statuses if d == device]
    finally:
        heard.close()
    node = stats.per_device[device]
    assert node.sleeps == 1 and node.slept_samples > 0
    assert node.sampled + node.slept_samples == 20
    assert node.messages_sent == node.sampled
    sleep = [s for s in statuses if s["state"] == "sleep"]
    assert sleep and sleep[0]["reason"] == "low_battery" and sleep[0]["battery_soc"] < 0.1
    assert statuses[0]["state"] == "online"
