"""The simulated fleet's layout and signals: pure, deterministic, plausible, in contract."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest

from agrimatch.contract import SENSORS
from agrimatch.contract.sensors import FIELD_NODE_SENSORS
from agrimatch.contract.telemetry import decode_telemetry, encode_telemetry
from agrimatch.contract.topics import ID_RE
from firmware_sim import DeviceSpec, plan_fleet, sample
from firmware_sim.signals import local_solar_hour, solar_elevation_deg

SEED = 11
JUNE_1 = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
DAY_S = 86_400.0


def _local_time(spec: DeviceSpec, day_start_s: float, solar_hour: float) -> float:
    """UTC epoch seconds when the sun's local hour at ``spec`` is about ``solar_hour``."""
    t = day_start_s + ((solar_hour - spec.lon / 15.0) % 24.0) * 3600.0
    # The equation of time moves solar noon by up to ~16 min; correct once.
    drift_h = (local_solar_hour(spec.lon, t) - solar_hour + 12.0) % 24.0 - 12.0
    return t - drift_h * 3600.0


# --- layout ---------------------------------------------------------------------------


def test_the_same_seed_plans_the_same_fleet():
    assert plan_fleet(50, SEED) == plan_fleet(50, SEED)


def test_a_different_seed_plans_a_different_fleet():
    assert plan_fleet(50, SEED) != plan_fleet(50, SEED + 1)


def test_every_id_fits_the_topic_contract_and_devices_are_unique():
    specs = plan_fleet(300, SEED)
    for spec in specs:
        for value in (spec.address.farm, spec.address.field, spec.address.device):
            assert ID_RE.fullmatch(value), value
    devices = [spec.device for spec in specs]
    assert len(set(devices)) == len(devices)
    assert devices[:3] == ["dev-0001", "dev-0002", "dev-0003"]
    assert {spec.address.farm for spec in specs} >= {"farm-01", "farm-02"}


def test_a_fleet_is_spread_over_several_farms_and_fields():
    specs = plan_fleet(20, SEED)
    per_farm = Counter(spec.address.farm for spec in specs)
    per_field = Counter((spec.address.farm, spec.address.field) for spec in specs)
    assert len(per_farm) >= 3
    assert len(per_field) >= 6
    assert max(per_farm.values()) <= 2 * min(per_farm.values()) + 1  # no farm hogs the fleet
    assert max(per_field.values()) - min(per_field.values()) <= 1  # dealt round-robin


def test_every_device_samples_every_canonical_sensor_at_a_phase_within_its_interval():
    for spec in plan_fleet(100, SEED, interval_s=30.0):
        assert set(spec.sensors) == set(FIELD_NODE_SENSORS)
        assert spec.interval_s == 30.0
        assert 0.0 <= spec.phase_s < 30.0


def test_devices_sit_near_their_farm_in_a_real_growing_region():
    specs = plan_fleet(100, SEED)
    by_farm: dict[str, list] = {}
    for spec in specs:
        assert 18.0 < spec.lat < 45.0 and 80.0 < spec.lon < 120.0  # China's farm belts
        by_farm.setdefault(spec.address.farm, []).append(spec)
    for members in by_farm.values():
        assert len({m.region for m in members}) == 1
        lats = [m.lat for m in members]
        assert max(lats) - min(lats) < 0.1  # within ~10 km


# --- signals --------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_readings_in_any_order():
    specs = plan_fleet(5, SEED)
    times = [JUNE_1 + k * 997.0 for k in range(50)]
    forward = [sample(spec, SEED, t) for spec in specs for t in times]
    backward = [sample(spec, SEED, t) for spec in reversed(specs) for t in reversed(times)]
    assert forward == list(reversed(backward))


def test_the_same_seed_gives_the_same_readings_in_another_process():
    spec = plan_fleet(3, SEED)[2]
    here = [(r.sensor, r.time_ms, r.value) for r in sample(spec, SEED, JUNE_1 + 4321.0)]
    code = (
        "import json; from firmware_sim import DeviceSpec, plan_fleet, sample; "
        f"spec = plan_fleet(3, {SEED})[2]; "
        f"print(json.dumps([(r.sensor, r.time_ms, r.value) for r in sample(spec, {SEED}, "
        f"{JUNE_1 + 4321.0!r})]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert [tuple(row) for row in json.loads(out.stdout)] == here


def test_a_different_seed_gives_different_readings():
    spec = plan_fleet(1, SEED)[0]
    t = JUNE_1 + 12 * 3600.0
    assert sample(spec, SEED, t) != sample(spec, SEED + 1, t)


def test_every_value_is_within_its_range_and_passes_the_contract_at_random_times():
    rng = random.Random(5)
    specs = plan_fleet(12, SEED)
    year_s = 366 * DAY_S
    for _ in range(600):
        spec = rng.choice(specs)
        t = datetime(2024, 1, 1, tzinfo=UTC).timestamp() + rng.uniform(0, year_s)
        readings = sample(spec, SEED, t)
        assert [r.sensor for r in readings] == list(spec.sensors)
        for r in readings:
            limits = SENSORS[r.sensor]
            assert limits.minimum <= r.value <= limits.maximum, (r, spec.device)
            assert math.isfinite(r.value)
            assert r.time_ms == round(t * 1000)
        # The contract's own decoder checks names, units, ranges and times.
        payload = encode_telemetry(spec.device, readings, base_time_s=t)
        decoded = decode_telemetry(payload, spec.device, now=t)
        assert decoded.problems == []
        assert decoded.readings == readings
        units = {rec["n"]: rec["u"] for rec in json.loads(payload)}
        assert units == {name: SENSORS[name].unit for name in spec.sensors}


def test_solar_radiation_is_zero_at_night_and_positive_at_noon():
    for spec in plan_fleet(8, SEED):
        for day in range(0, 365, 30):
            day_start = datetime(2024, 1, 1, tzinfo=UTC).timestamp() + day * DAY_S
            noon = _local_time(spec, day_start, 12.0)
            midnight = _local_time(spec, day_start, 0.0)
            assert solar_elevation_deg(spec.lat, spec.lon, noon) > 20.0
            assert solar_elevation_deg(spec.lat, spec.lon, midnight) < -20.0
            solar = {
                t: next(r.value for r in sample(spec, SEED, t) if r.sensor == "solar_rad")
                for t in (noon, midnight)
            }
            assert solar[noon] > 50.0
            assert solar[midnight] == 0.0


def test_noon_sunshine_is_stronger_in_summer_than_in_winter():
    spec = plan_fleet(1, SEED)[0]
    summer = _local_time(spec, datetime(2024, 6, 21, tzinfo=UTC).timestamp(), 12.0)
    winter = _local_time(spec, datetime(2024, 12, 21, tzinfo=UTC).timestamp(), 12.0)
    assert solar_elevation_deg(spec.lat, spec.lon, summer) > 40 + solar_elevation_deg(
        spec.lat, spec.lon, winter
    )


def test_air_is_warmest_in_the_afternoon_and_humidity_moves_against_temperature():
    spec = plan_fleet(1, SEED)[0]
    temps: list[float] = []
    humidity: list[float] = []
    afternoon_minus_dawn = []
    for day in range(10):
        start = JUNE_1 + day * DAY_S
        dawn = {r.sensor: r.value for r in sample(spec, SEED, _local_time(spec, start, 5.0))}
        after = {r.sensor: r.value for r in sample(spec, SEED, _local_time(spec, start, 15.0))}
        afternoon_minus_dawn.append(after["air_temp"] - dawn["air_temp"])
        for hour in range(24):
            values = {r.sensor: r.value for r in sample(spec, SEED, start + hour * 3600.0)}
            temps.append(values["air_temp"])
            humidity.append(values["air_rh"])
    assert min(afternoon_minus_dawn) > 2.0
    mean_t, mean_h = sum(temps) / len(temps), sum(humidity) / len(humidity)
    covariance = sum((t - mean_t) * (h - mean_h) for t, h in zip(temps, humidity, strict=True))
    assert covariance < 0


def test_rain_is_rain_since_the_last_reading_so_any_interval_adds_up_to_the_same_total():
    spec = next(s for s in plan_fleet(8, SEED) if s.region == "mengzi-yunnan")
    start = datetime(2024, 7, 1, tzinfo=UTC).timestamp()  # the monsoon
    minutely = dataclasses.replace(spec, interval_s=60.0, phase_s=0.0)
    hourly = dataclasses.replace(spec, interval_s=3600.0, phase_s=0.0)

    def rain(s: DeviceSpec, t: float) -> float:
        return next(r.value for r in sample(s, SEED, t) if r.sensor == "rain")

    days = 8
    by_minute = sum(rain(minutely, start + k * 60.0) for k in range(1, days * 1440 + 1))
    by_hour = sum(rain(hourly, start + k * 3600.0) for k in range(1, days * 24 + 1))
    assert by_hour > 5.0  # it does rain in a Yunnan July
    assert math.isclose(by_minute, by_hour, abs_tol=1e-6)


SINCE_LAST_READING = ("rain", "air_temp_min", "air_temp_max")


def test_the_sampling_interval_changes_no_reading_but_what_is_counted_since_the_last():
    spec = plan_fleet(1, SEED)[0]
    other = dataclasses.replace(spec, interval_s=17.0)
    t = JUNE_1 + 5555.0
    a = {r.sensor: r.value for r in sample(spec, SEED, t)}
    b = {r.sensor: r.value for r in sample(other, SEED, t)}
    for name in SINCE_LAST_READING:
        del a[name], b[name]
    assert a == b


def test_the_min_max_register_brackets_every_reading_of_its_interval():
    spec = dataclasses.replace(plan_fleet(1, SEED)[0], interval_s=6 * 3600.0)
    minutely = dataclasses.replace(spec, interval_s=60.0)
    start = JUNE_1 + 6 * 3600.0
    for k in range(1, 9):
        end = start + k * spec.interval_s
        values = {r.sensor: r.value for r in sample(spec, SEED, end)}
        temps = [
            next(r.value for r in sample(minutely, SEED, end - m * 60.0) if r.sensor == "air_temp")
            for m in range(0, 360, 10)
        ]
        assert values["air_temp_min"] <= values["air_temp"] <= values["air_temp_max"]
        # Within the sensor's sample noise of what a reading every 10 minutes saw.
        assert values["air_temp_min"] == pytest.approx(min(temps), abs=0.5)
        assert values["air_temp_max"] == pytest.approx(max(temps), abs=0.5)


def test_a_six_hourly_register_catches_the_dawn_low_a_spot_reading_misses():
    spec = dataclasses.replace(plan_fleet(1, SEED)[0], interval_s=6 * 3600.0)
    lows, spots = [], []
    for day in range(10):
        day_s = JUNE_1 + day * 86_400.0
        readings = [
            {r.sensor: r.value for r in sample(spec, SEED, day_s + h * 3600.0)}
            for h in (6, 12, 18, 24)
        ]
        lows.append(min(r["air_temp_min"] for r in readings))
        spots.append(min(r["air_temp"] for r in readings))
    assert all(low <= spot for low, spot in zip(lows, spots, strict=True))
    assert sum(spots) / 10 - sum(lows) / 10 > 0.5


def test_devices_of_one_farm_see_the_same_rain_events():
    specs = plan_fleet(40, SEED)
    farm = specs[0].address.farm
    same_farm = [s for s in specs if s.address.farm == farm][:3]
    assert len(same_farm) >= 2
    start = datetime(2024, 7, 1, tzinfo=UTC).timestamp()
    hours = [start + h * 3600.0 for h in range(24 * 30)]

    def rainy(spec: DeviceSpec) -> set[float]:
        return {
            t for t in hours for r in sample(spec, SEED, t) if r.sensor == "rain" and r.value > 0
        }

    events = [rainy(s) for s in same_farm]
    assert events[0]
    assert all(e == events[0] for e in events)


def test_soil_moisture_rises_after_rain_and_soil_temperature_varies_less_than_air():
    spec = next(s for s in plan_fleet(8, SEED) if s.region == "mengzi-yunnan")
    start = datetime(2024, 7, 1, tzinfo=UTC).timestamp()
    series = [
        {r.sensor: r.value for r in sample(spec, SEED, start + h * 3600.0)} for h in range(24 * 30)
    ]
    wettest = max(series, key=lambda v: v["soil_moisture_10cm"])
    driest = min(series, key=lambda v: v["soil_moisture_10cm"])
    assert wettest["soil_moisture_10cm"] - driest["soil_moisture_10cm"] > 3.0
    rainy = [i for i, v in enumerate(series) if v["rain"] > 0]
    assert rainy
    after = series[rainy[0] + 6]["soil_moisture_10cm"]
    before = series[max(0, rainy[0] - 1)]["soil_moisture_10cm"]
    assert after > before

    def spread(name: str) -> float:
        return max(v[name] for v in series) - min(v[name] for v in series)

    assert spread("soil_temp") < spread("air_temp")
