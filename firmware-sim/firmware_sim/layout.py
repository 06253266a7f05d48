"""Where the simulated devices sit: farms, fields, positions and sampling plans.

Pure and deterministic: the same ``(devices, seed, interval_s)`` always plans the
same fleet, so a run can be repeated and its telemetry compared with what the
store holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agrimatch.contract import DeviceAddress
from agrimatch.contract.sensors import CAMERA_NODE_SENSORS, FIELD_NODE_SENSORS
from agrimatch.registry.repository import device_ids
from agrimatch.scenario import Anomaly, Scenario
from firmware_sim import _noise

# Growing regions named in the design (the social-commerce cases it cites), as
# (latitude, longitude) centres. Farms are scattered around them so the fleet
# covers different climates: arid Xinjiang, the North China Plain, the Loess
# Plateau and subtropical Yunnan.
REGIONS: tuple[tuple[str, float, float], ...] = (
    ("zhongmou-henan", 34.72, 113.98),  # garlic
    ("korla-xinjiang", 41.76, 86.15),  # fragrant pears
    ("yanchuan-shaanxi", 36.88, 110.19),  # Yellow River beach jujubes
    ("mengzi-yunnan", 23.37, 103.38),  # snow lotus fruit
)

FARM_SPREAD_DEG = 0.3  # farms lie within ~30 km of their region's centre
FIELD_SPREAD_DEG = 0.02  # fields within ~2 km of their farm
DEVICE_SPREAD_DEG = 0.003  # devices within ~300 m of their field's centre
MIN_FIELDS_PER_FARM = 2
MAX_FIELDS_PER_FARM = 6


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What a device is told at installation: where it is and how often to sample.

    ``phase_s`` spreads sample times within the interval (sample times are
    ``k * interval_s + phase_s``) so a fleet does not publish in lockstep.
    """

    address: DeviceAddress
    interval_s: float
    phase_s: float
    lat: float
    lon: float
    region: str = ""  # one of REGIONS' names: sets the climate the device lives in
    sensors: tuple[str, ...] = FIELD_NODE_SENSORS
    # The field the device stands in, for the world model (firmware_sim.world): empty
    # means the region's signature crop, planted at the start of its window, on loam.
    crop: str = ""
    soil: str = ""
    planting: str = ""  # "MM-DD" of planting (bud break for orchards)
    elevation_m: float = 100.0  # only matters away from the four regions' stations
    anomalies: tuple[Anomaly, ...] = ()  # weather anomalies hitting the device's region
    weather_file: str | None = None  # the region's observed daily weather, if it has one

    @property
    def device(self) -> str:
        return self.address.device


def region_centre(spec: DeviceSpec) -> tuple[float, float]:
    """The (lat, lon) whose climate the device lives in: its region's centre, else its own.

    Weather is computed for the region, not the exact spot, so every device of
    a farm sees the same rain and the same cold snap.
    """
    for name, lat, lon in REGIONS:
        if name == spec.region:
            return lat, lon
    return spec.lat, spec.lon


def farm_count(devices: int) -> int:
    """How many farms a fleet of ``devices`` is spread over.

    Grows with the square root so a small test fleet still spans several farms
    and a large one does not end up with one device per farm.
    """
    return max(1, min(devices, math.ceil(math.sqrt(devices) / 2) + 1))


def plan_fleet(devices: int, seed: int, interval_s: float = 60.0) -> list[DeviceSpec]:
    """Plan a fleet of ``devices`` sensor nodes, deterministically for ``seed``.

    Farms (``farm-01``...) each get 2-6 fields (``field-01``...); devices
    (``dev-0001``...) are dealt over the fields round-robin, first fields of
    every farm first, so every farm gets devices before any field gets a second.
    Every device carries all canonical sensors.
    """
    if devices < 1:
        raise ValueError("a fleet needs at least one device")
    if not interval_s > 0:
        raise ValueError("interval_s must be positive")
    rng = np.random.default_rng(seed)
    n_farms = farm_count(devices)
    farm_width = max(2, len(str(n_farms)))
    device_width = max(4, len(str(devices)))

    # (region, farm id, field id, field centre lat, lon), interleaved across farms.
    farm_fields: list[list[tuple[str, str, str, float, float]]] = []
    for f in range(n_farms):
        region, region_lat, region_lon = REGIONS[int(rng.integers(len(REGIONS)))]
        farm_lat = region_lat + float(rng.uniform(-FARM_SPREAD_DEG, FARM_SPREAD_DEG))
        farm_lon = region_lon + float(rng.uniform(-FARM_SPREAD_DEG, FARM_SPREAD_DEG))
        n_fields = int(rng.integers(MIN_FIELDS_PER_FARM, MAX_FIELDS_PER_FARM + 1))
        field_width = max(2, len(str(n_fields)))
        farm_id = f"farm-{f + 1:0{farm_width}d}"
        farm_fields.append(
            [
                (
                    region,
                    farm_id,
                    f"field-{j + 1:0{field_width}d}",
                    farm_lat + float(rng.uniform(-FIELD_SPREAD_DEG, FIELD_SPREAD_DEG)),
                    farm_lon + float(rng.uniform(-FIELD_SPREAD_DEG, FIELD_SPREAD_DEG)),
                )
                for j in range(n_fields)
            ]
        )
    slots = [
        fields[j] for j in range(MAX_FIELDS_PER_FARM) for fields in farm_fields if j < len(fields)
    ]

    specs = []
    for i in range(devices):
        region, farm_id, field_id, field_lat, field_lon = slots[i % len(slots)]
        # Millisecond phase: sample times are computed in integer milliseconds.
        phase_s = round(float(rng.uniform(0.0, interval_s)), 3) % interval_s
        specs.append(
            DeviceSpec(
                address=DeviceAddress(farm_id, field_id, f"dev-{i + 1:0{device_width}d}"),
                interval_s=interval_s,
                phase_s=phase_s,
                lat=round(field_lat + float(rng.uniform(-DEVICE_SPREAD_DEG, DEVICE_SPREAD_DEG)), 6),
                lon=round(field_lon + float(rng.uniform(-DEVICE_SPREAD_DEG, DEVICE_SPREAD_DEG)), 6),
                region=region,
            )
        )
    return specs


def plan_from_scenario(
    scenario: Scenario, interval_s: float = 60.0, camera_interval_s: float = 3600.0
) -> list[DeviceSpec]:
    """The devices a scenario installs: its fields' sensor nodes and canopy cameras.

    Device ids are the registry's (:func:`agrimatch.registry.device_ids`), so
    topics, store tags and registry rows name the same device. Each device
    knows its field (crop, soil, planting) and the anomalies of its region,
    which the world model needs; phases are spread deterministically by id.
    """
    if not interval_s > 0 or not camera_interval_s > 0:
        raise ValueError("intervals must be positive")
    regions = {r.id: r for r in scenario.regions}
    specs = []
    for farm in scenario.all_farms():
        region = regions[farm.region]
        anomalies = tuple(a for a in scenario.anomalies if a.region == farm.region)
        for plan in farm.fields:
            for device_id, kind in device_ids(
                farm.id, plan.id, sensors=plan.devices, camera=plan.camera
            ):
                camera = kind == "camera"
                interval = camera_interval_s if camera else interval_s
                specs.append(
                    DeviceSpec(
                        address=DeviceAddress(farm.id, plan.id, device_id),
                        interval_s=interval,
                        phase_s=round(
                            _noise.uniform(scenario.seed, "phase", device_id, 0) * interval, 3
                        ),
                        lat=farm.lat,
                        lon=farm.lon,
                        region=farm.region,
                        sensors=CAMERA_NODE_SENSORS if camera else FIELD_NODE_SENSORS,
                        crop=plan.crop,
                        soil=plan.soil,
                        planting=plan.planting,
                        elevation_m=region.elevation_m,
                        anomalies=anomalies,
                        weather_file=region.weather_file,
                    )
                )
    return specs
