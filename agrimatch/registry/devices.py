"""Devices as the API manages them: provisioning on a field, and their config.

Like :mod:`agrimatch.registry.repository`, every function takes a ``Session``
and leaves the transaction to the caller (flush, never commit).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from agrimatch.broker_access import hash_password, new_password
from agrimatch.contract.device_config import ConfigMessage, Threshold
from agrimatch.contract.topics import ID_RE, DeviceAddress
from agrimatch.registry.db import RegistryError
from agrimatch.registry.models import Device, DeviceConfig, DeviceKind
from agrimatch.registry.repository import (
    DEFAULT_CAMERA_INTERVAL_S,
    DEFAULT_SENSOR_INTERVAL_S,
    get_field,
)


class UnknownField(RegistryError):
    """The field a device was to be registered on does not exist."""


class DeviceExists(RegistryError):
    """A device with that id is registered already."""


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """A device's config as the registry holds it, and who set it when (None: never set)."""

    device_id: str
    address: DeviceAddress
    config: ConfigMessage
    updated_at: datetime | None
    updated_by: str | None


def register_device(
    session: Session,
    *,
    farm_id: str,
    field_id: str,
    kind: DeviceKind = "sensor",
    interval_s: float | None = None,
    device_id: str | None = None,
) -> Device:
    """Register a device on an existing field.

    Without ``device_id`` the id follows the scenario scheme
    (:func:`agrimatch.registry.repository.device_ids`): the next free
    ``{farm}-{field}-d{n}`` for a sensor, ``{farm}-{field}-cam`` for a camera.
    Raises :class:`UnknownField`, :class:`DeviceExists`, or ``RegistryError``
    for an id that cannot be a topic level.
    """
    if get_field(session, farm_id, field_id) is None:
        raise UnknownField(f"farm {farm_id!r} has no field {field_id!r}")
    if device_id is None:
        device_id = _next_device_id(session, farm_id, field_id, kind)
    if not ID_RE.fullmatch(device_id):
        raise RegistryError(f"device id {device_id!r} must match {ID_RE.pattern}")
    if session.get(Device, device_id) is not None:
        raise DeviceExists(f"device {device_id!r} is registered already")
    if interval_s is None:
        interval_s = DEFAULT_SENSOR_INTERVAL_S if kind == "sensor" else DEFAULT_CAMERA_INTERVAL_S
    device = Device(
        id=device_id, farm_id=farm_id, field_id=field_id, kind=kind, interval_s=interval_s
    )
    session.add(device)
    session.flush()
    return device


@dataclass(frozen=True, slots=True)
class MqttCredentials:
    """A device's broker login: username is its id. ``password`` exists only in this object."""

    username: str
    password: str

    def __repr__(self) -> str:  # never the password in a log or a traceback
        return f"MqttCredentials(username={self.username!r}, password='***')"


def issue_mqtt_credentials(session: Session, device_id: str) -> MqttCredentials:
    """Make ``device_id`` a new random MQTT password; only its Mosquitto hash is stored.

    Issuing again replaces the old password (the broker takes the new one once
    ``agrimatch devices provision`` has rewritten its password file).
    Raises ``RegistryError`` for an unknown device.
    """
    device = session.get(Device, device_id)
    if device is None:
        raise RegistryError(f"no device {device_id!r}")
    password = new_password()
    device.mqtt_password_hash = hash_password(password)
    session.flush()
    return MqttCredentials(username=device.id, password=password)


def registered_place(session: Session, device_id: str) -> tuple[str, str] | None:
    """``(farm_id, field_id)`` of a registered device, or None if the registry has none."""
    row = session.execute(
        select(Device.farm_id, Device.field_id).where(Device.id == device_id)
    ).first()
    return None if row is None else (row[0], row[1])


def broker_logins(session: Session) -> list[tuple[DeviceAddress, str | None]]:
    """Every registered device's place and MQTT password hash (None: never issued), by id."""
    rows = session.execute(
        select(Device.id, Device.farm_id, Device.field_id, Device.mqtt_password_hash).order_by(
            Device.id
        )
    )
    return [(DeviceAddress(farm, field, device), hashed) for device, farm, field, hashed in rows]


def _next_device_id(session: Session, farm_id: str, field_id: str, kind: DeviceKind) -> str:
    prefix = f"{farm_id}-{field_id}-"
    if kind == "camera":
        return f"{prefix}cam"
    taken = session.scalars(
        select(Device.id).where(Device.farm_id == farm_id, Device.field_id == field_id)
    )
    pattern = re.compile(re.escape(prefix) + r"d(\d+)")
    numbers = [int(m.group(1)) for d in taken if (m := pattern.fullmatch(d))]
    return f"{prefix}d{max(numbers, default=0) + 1}"


def device_settings(session: Session, device_id: str) -> DeviceSettings | None:
    """The config of ``device_id`` (its interval, and thresholds once set), or None."""
    device = session.get(Device, device_id)
    if device is None:
        return None
    row = session.get(DeviceConfig, device_id)
    thresholds = _thresholds_from_json(row.thresholds_json) if row else {}
    return DeviceSettings(
        device_id=device.id,
        address=DeviceAddress(device.farm_id, device.field_id, device.id),
        config=ConfigMessage(interval_s=device.interval_s, thresholds=thresholds),
        updated_at=_aware(row.updated_at) if row else None,
        updated_by=row.updated_by if row else None,
    )


def set_device_settings(
    session: Session,
    device_id: str,
    config: ConfigMessage,
    *,
    updated_by: str,
    now: datetime | None = None,
) -> DeviceSettings:
    """Store ``config`` as the device's: the interval on the device, thresholds beside it.

    The caller validated ``config`` (``agrimatch.contract.device_config``).
    Raises ``RegistryError`` for an unknown device.
    """
    device = session.get(Device, device_id)
    if device is None:
        raise RegistryError(f"no device {device_id!r}")
    now = now or datetime.now(UTC)
    device.interval_s = config.interval_s
    thresholds_json = json.dumps(
        {s: {"min": t.min, "max": t.max} for s, t in sorted(config.thresholds.items())}
    )
    row = session.get(DeviceConfig, device_id)
    if row is None:
        row = DeviceConfig(device_id=device_id)
        session.add(row)
    row.thresholds_json = thresholds_json
    row.updated_at = now
    row.updated_by = updated_by
    session.flush()
    settings = device_settings(session, device_id)
    assert settings is not None  # just written
    return settings


def _thresholds_from_json(text: str) -> dict[str, Threshold]:
    return {s: Threshold(b.get("min"), b.get("max")) for s, b in json.loads(text).items()}


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for DateTime(timezone=True); they were written as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
