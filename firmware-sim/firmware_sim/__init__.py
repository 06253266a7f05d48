"""Simulated 5G farm sensor nodes publishing SenML telemetry over MQTT.

The public face:

* :func:`plan_fleet` and :class:`DeviceSpec`: where devices sit and how often they sample;
* :func:`sample` (with :func:`site_conditions` and :func:`read_sensors`): pure,
  deterministic readings for a device at a time;
* :class:`Node`: one device (sampling, MQTT link, store-and-forward, config);
* :class:`Fleet`, :func:`run_fleet` and :class:`FleetStats`: many devices in one event loop.

Imports only the ``agrimatch`` kernel (contract, clock, mqtt, settings).
"""

from firmware_sim.fleet import Fleet, FleetStats, run_fleet, seeded_probe
from firmware_sim.layout import REGIONS, DeviceSpec, plan_fleet
from firmware_sim.node import Node, NodeStats, Probe, PublishCallback
from firmware_sim.signals import SiteConditions, read_sensors, sample, site_conditions

__all__ = [
    "REGIONS",
    "DeviceSpec",
    "Fleet",
    "FleetStats",
    "Node",
    "NodeStats",
    "Probe",
    "PublishCallback",
    "SiteConditions",
    "plan_fleet",
    "read_sensors",
    "run_fleet",
    "sample",
    "seeded_probe",
    "site_conditions",
]
