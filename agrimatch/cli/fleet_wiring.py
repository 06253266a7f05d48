"""Builds simulated fleets for the CLI (``sim``, ``demo``) and tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agrimatch.clock import Clock
from agrimatch.contract.sensors import CAMERA_NODE_SENSORS
from agrimatch.contract.telemetry import Reading
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint
from agrimatch.scenario import load_scenario
from firmware_sim import DeviceSpec, Fleet, FleetStats, plan_fleet
from firmware_sim.device import DeviceRealism
from firmware_sim.layout import plan_from_scenario, region_centre

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

PublishCallback = Callable[[DeviceAddress, list[Reading]], None]

# What the registry needs of a field the simulator never sized: one hectare.
SIM_FIELD_AREA_HA = 1.0


@dataclass(frozen=True, slots=True)
class FleetRegistration:
    """Rows the registry gained for a fleet (0 everywhere when it was registered already)."""

    farms: int
    fields: int
    devices: int


def register_fleet(
    sessions: sessionmaker[Session], specs: Sequence[DeviceSpec]
) -> FleetRegistration:
    """Put the fleet's regions, farms, fields and devices in the registry where missing.

    Ingest checks each device's topic against its registered place
    (AGRIMATCH_INGEST_CHECK_PLACE): an unregistered simulated device would be
    dead-lettered ``unknown_device``. Idempotent and insert-only: rows the
    registry has already (a scenario's, an operator's edits, a device moved on
    purpose) are kept as they are, so running the simulator never rewrites the
    registry; a device registered elsewhere stays there and ingest says
    ``wrong_place``. Fields get the crop, soil and planting the simulator grows
    on them, and ``SIM_FIELD_AREA_HA``.
    """
    # Imported here: the simulator without registration needs neither.
    from agrimatch.agronomy import CROPS
    from agrimatch.registry.models import Device, Farm, Field, Region
    from agrimatch.registry.repository import sync_crops, upsert_rows
    from firmware_sim.world._climate import climate_at

    regions: dict[str, dict[str, Any]] = {}
    farms: dict[str, dict[str, Any]] = {}
    fields: dict[tuple[str, str], dict[str, Any]] = {}
    devices: list[dict[str, Any]] = []
    for spec in specs:
        farm, field = spec.address.farm, spec.address.field
        lat, lon = region_centre(spec)
        region = spec.region or f"sim-{farm}"
        regions.setdefault(
            region,
            {"id": region, "name": region, "lat": lat, "lon": lon, "elevation_m": spec.elevation_m},
        )
        farms.setdefault(farm, {"id": farm, "region_id": region, "lat": spec.lat, "lon": spec.lon})
        # As firmware_sim.signals grows it: the region's signature crop on loam by default.
        crop = spec.crop or climate_at(lat, lon, spec.elevation_m).default_crop
        fields.setdefault(
            (farm, field),
            {
                "farm_id": farm,
                "field_id": field,
                "crop": crop,
                "area_ha": SIM_FIELD_AREA_HA,
                "planting_month_day": spec.planting or CROPS[crop].planting_window[0],
                "soil": spec.soil or "loam",
                "lat": spec.lat,
                "lon": spec.lon,
            },
        )
        camera = spec.sensors == CAMERA_NODE_SENSORS
        devices.append(
            {
                "id": spec.device,
                "farm_id": farm,
                "field_id": field,
                "kind": "camera" if camera else "sensor",
                "interval_s": spec.interval_s,
            }
        )
    with sessions.begin() as session:
        before = _counts(session)
        sync_crops(session)
        # update=[]: ON CONFLICT DO NOTHING, insert-only as promised above.
        upsert_rows(session, Region, list(regions.values()), ["id"], update=[])
        upsert_rows(session, Farm, list(farms.values()), ["id"], update=[])
        upsert_rows(session, Field, list(fields.values()), ["farm_id", "field_id"], update=[])
        upsert_rows(session, Device, devices, ["id"], update=[])
        after = _counts(session)
    return FleetRegistration(*(a - b for a, b in zip(after, before, strict=True)))


def _counts(session: Session) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    from agrimatch.registry.models import Device, Farm, Field

    return (
        session.scalar(select(func.count()).select_from(Farm)) or 0,
        session.scalar(select(func.count()).select_from(Field)) or 0,
        session.scalar(select(func.count()).select_from(Device)) or 0,
    )


def run_fleet_until(
    endpoint: MqttEndpoint,
    clock: Clock,
    specs: Sequence[DeviceSpec],
    seed: int,
    duration_s: float | None,
    stop: threading.Event,
    on_publish: PublishCallback | None = None,
    realism: bool = False,
    registry: sessionmaker[Session] | None = None,
) -> FleetStats:
    """Run a fleet until ``duration_s`` of clock time passes or ``stop`` is set.

    ``realism`` gives the devices 5G outages, faults, clock drift and battery
    sleep (:class:`firmware_sim.device.DeviceRealism`); off, they are ideal.
    ``registry``: the fleet is registered there first (:func:`register_fleet`),
    so that ingest's place check knows every device before its first pack.
    """
    if registry is not None:
        register_fleet(registry, specs)

    async def main() -> FleetStats:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def relay_stop() -> None:
            stop.wait()
            # A stop set after the run ended finds the loop closed: nothing to stop.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(done.set)

        threading.Thread(target=relay_stop, name="fleet-stop", daemon=True).start()
        fleet = Fleet(
            specs,
            endpoint,
            clock,
            seed,
            on_publish=on_publish,
            realism=DeviceRealism() if realism else None,
        )
        return await fleet.run(duration_s, done)

    return asyncio.run(main())


def fleet_specs(
    scenario: str | None, devices: int, seed: int, interval_s: float
) -> tuple[list[DeviceSpec], int]:
    """The devices of a scenario (and its seed), or a planned fleet of ``devices``."""
    if scenario is None:
        return plan_fleet(devices, seed, interval_s), seed
    loaded = load_scenario(scenario)
    return plan_from_scenario(loaded, interval_s=interval_s), loaded.seed
