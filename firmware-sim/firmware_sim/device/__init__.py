"""A sensor node's hardware as it really behaves: radio, battery, clock, faulty sensors.

The public face:

* :class:`DeviceRealism`: what is modelled and at which rates (``DeviceRealism.off()``
  is the ideal device), made of :class:`RadioProfile`, :class:`BatteryProfile`,
  :class:`ClockProfile`, :class:`FaultRates` and forced :class:`Outage` windows;
* :class:`DeviceModel`: wraps an environment probe, gives an :class:`Observation`
  per sample (device-stamped, faulty readings; coverage; sleep) and keeps the
  truth of faults in a :class:`FaultLog`;
* the models themselves, pure and usable alone: :class:`RadioModel`,
  :mod:`~firmware_sim.device.battery`, :class:`DeviceClock`, :func:`apply_faults`.

Everything random is a stable hash of ``(seed, stream, owner, index)``.
"""

from firmware_sim.device._processes import Episode
from firmware_sim.device.battery import BatteryProfile, BatteryState, open_circuit_voltage
from firmware_sim.device.clock import ClockProfile, DeviceClock
from firmware_sim.device.faults import (
    ENVIRONMENT_SENSORS,
    FaultKind,
    FaultRates,
    FaultRecord,
    apply_faults,
)
from firmware_sim.device.model import DeviceModel, DeviceRealism, FaultLog, Observation
from firmware_sim.device.radio import (
    LinkState,
    Outage,
    RadioModel,
    RadioProfile,
    packet_loss_probability,
)

__all__ = [
    "ENVIRONMENT_SENSORS",
    "BatteryProfile",
    "BatteryState",
    "ClockProfile",
    "DeviceClock",
    "DeviceModel",
    "DeviceRealism",
    "Episode",
    "FaultKind",
    "FaultLog",
    "FaultRates",
    "FaultRecord",
    "LinkState",
    "Observation",
    "Outage",
    "RadioModel",
    "RadioProfile",
    "apply_faults",
    "open_circuit_voltage",
    "packet_loss_probability",
]
