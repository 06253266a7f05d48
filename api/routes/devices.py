"""Devices: list, provision (with their key), and their config (read, set and publish)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from agrimatch.auth import ApiKeyInfo, Role, create_key
from agrimatch.contract.device_config import ConfigMessage, Threshold
from agrimatch.contract.topics import DeviceAddress
from agrimatch.registry import audit
from agrimatch.registry.db import RegistryError
from agrimatch.registry.devices import (
    DeviceExists,
    DeviceSettings,
    UnknownField,
    device_settings,
    issue_mqtt_credentials,
    register_device,
    set_device_settings,
)
from agrimatch.registry.models import Device
from agrimatch.registry.repository import get_device
from api.broker import BrokerUnavailable
from api.crud import devices_page
from api.deps import ContextDep, CurrentKey, ManagerKey, SessionDep
from api.errors import ProblemError, masked
from api.openapi import responses
from api.pagination import CursorParam, LimitParam, decode_cursor, page
from api.schemas.common import Page
from api.schemas.devices import (
    DeviceConfigIn,
    DeviceConfigPublic,
    DeviceCreate,
    DeviceCreated,
    DevicePublic,
    MqttLogin,
    NewApiKey,
    ThresholdBounds,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/devices", tags=["devices"])

DEVICE_EXAMPLE = {
    "id": "garlic-coop-1-north-d3",
    "farm_id": "garlic-coop-1",
    "field_id": "north",
    "kind": "sensor",
    "interval_s": 60.0,
    "telemetry_topic": "agrimatch/v1/garlic-coop-1/north/garlic-coop-1-north-d3/telemetry",
    "config_topic": "agrimatch/v1/garlic-coop-1/north/garlic-coop-1-north-d3/config",
}
CONFIG_EXAMPLE = {
    "device": "garlic-coop-1-north-d3",
    "config_topic": "agrimatch/v1/garlic-coop-1/north/garlic-coop-1-north-d3/config",
    "interval_s": 300.0,
    "thresholds": {"soil_moisture_10cm": {"min": 15.0, "max": 45.0}},
    "updated_at": "2026-12-08T09:30:00Z",
    "updated_by": "coop agronomist (key 3f9a2c7e1b04)",
    "published": True,
    "publish_detail": None,
}


def _public(device: Device) -> DevicePublic:
    address = DeviceAddress(device.farm_id, device.field_id, device.id)
    return DevicePublic(
        id=device.id,
        farm_id=device.farm_id,
        field_id=device.field_id,
        kind=device.kind,
        interval_s=device.interval_s,
        telemetry_topic=address.telemetry_topic,
        config_topic=address.config_topic,
    )


def _forbidden(detail: str) -> ProblemError:
    return ProblemError(403, detail, slug="forbidden", title="Forbidden")


def _check_manages(key: ApiKeyInfo, farm_id: str) -> None:
    if not key.may_manage_farm(farm_id):
        raise _forbidden(f"this key's farms do not include {farm_id!r}")


def _device_or_404(session: Session, device_id: str) -> Device:
    device = get_device(session, device_id)
    if device is None:
        raise ProblemError(404, f"no device {device_id!r}")
    return device


@router.get(
    "",
    summary="List devices (an agronomist's: those of their farms)",
    response_model=Page[DevicePublic],
    responses=responses(
        {"items": [DEVICE_EXAMPLE], "next_cursor": "eyJhZnRlciI6Ii4uLiJ9"}, 400, 401, 403
    ),
)
def list_devices(
    key: ManagerKey,
    session: SessionDep,
    farm_id: str | None = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[DevicePublic]:
    """Devices by id, a page at a time; ``farm_id`` narrows to one farm."""
    position = decode_cursor(cursor, "after")
    rows = devices_page(
        session,
        limit=limit + 1,
        after=position["after"] if position else None,
        farm_ids=key.farm_ids if key.role is Role.AGRONOMIST else None,
        farm_id=farm_id,
    )
    items, next_cursor = page(rows, limit, lambda d: {"after": d.id})
    return Page[DevicePublic](items=[_public(d) for d in items], next_cursor=next_cursor)


@router.post(
    "",
    status_code=201,
    summary="Register a device on a field; its API key and MQTT login are returned once",
    response_model=DeviceCreated,
    responses=responses(
        {
            "device": DEVICE_EXAMPLE,
            "api_key": {
                "id": "3f9a2c7e1b04",
                "name": "garlic-coop-1-north-d3",
                "role": "device",
                "token": "agm_3f9a2c7e1b04_<secret shown once>",
            },
            "mqtt": {
                "username": "garlic-coop-1-north-d3",
                "password": "<secret shown once>",
            },
        },
        401,
        403,
        409,
        status=201,
        description="Registered; the key's token is in the body, this once",
    ),
)
def create_device(
    body: DeviceCreate, key: ManagerKey, context: ContextDep, response: Response
) -> DeviceCreated:
    """Register a device on an existing field of a farm the key manages; make its key and
    MQTT password (stored only as a Mosquitto hash; the broker takes it once
    ``agrimatch devices provision`` has rewritten its password file)."""
    _check_manages(key, body.farm_id)
    with context.sessions.begin() as session:
        try:
            device = register_device(
                session,
                farm_id=body.farm_id,
                field_id=body.field_id,
                kind=body.kind,
                interval_s=body.interval_s,
                device_id=body.id,
            )
        except UnknownField as exc:
            raise ProblemError(
                422,
                str(exc),
                slug="unknown-field",
                title="Unknown field",
                errors=[
                    {"in": "body", "field": "field_id", "pointer": "#/field_id", "detail": str(exc)}
                ],
            ) from None
        except DeviceExists as exc:
            raise ProblemError(409, str(exc)) from None
        except RegistryError as exc:
            raise ProblemError(422, str(exc)) from None
        info, token = create_key(
            session,
            name=body.key_name or device.id,
            role=Role.DEVICE,
            pepper=context.key_pepper,
            device_id=device.id,
            actor=key.label,
        )
        mqtt = issue_mqtt_credentials(session, device.id)
        audit.record(
            session,
            actor=key.label,
            action="device.provision",
            target=device.id,
            detail=f"on {device.farm_id}/{device.field_id}, key {info.id}",
        )
        public = _public(device)
    # Never the token or the password in a log line.
    log.info("device %s registered by %s, key %s", device.id, key.label, info.id)
    response.headers["Location"] = f"/v1/devices/{device.id}"
    return DeviceCreated(
        device=public,
        api_key=NewApiKey(id=info.id, name=info.name, role=info.role.value, token=token),
        mqtt=MqttLogin(username=mqtt.username, password=mqtt.password),
    )


@router.get(
    "/{device_id}",
    summary="A device",
    response_model=DevicePublic,
    responses=responses(DEVICE_EXAMPLE, 401, 403, 404),
)
def read_device(device_id: str, key: CurrentKey, session: SessionDep) -> DevicePublic:
    """A device, to an admin, an agronomist of its farm, or the device itself."""
    device = _device_or_404(session, device_id)
    _check_reads(key, device)
    return _public(device)


def _check_reads(key: ApiKeyInfo, device: Device) -> None:
    if key.role is Role.DEVICE:
        if key.device_id != device.id:
            raise _forbidden("a device key reads only its own device")
        return
    if key.role is Role.PLATFORM:
        raise _forbidden("a platform key does not read devices")
    _check_manages(key, device.farm_id)


def _config_public(
    settings: DeviceSettings, published: bool | None = None, detail: str | None = None
) -> DeviceConfigPublic:
    return DeviceConfigPublic(
        device=settings.device_id,
        config_topic=settings.address.config_topic,
        interval_s=settings.config.interval_s,
        thresholds={
            sensor: ThresholdBounds(min=t.min, max=t.max)
            for sensor, t in settings.config.thresholds.items()
        },
        updated_at=settings.updated_at,
        updated_by=settings.updated_by,
        published=published,
        publish_detail=detail,
    )


@router.get(
    "/{device_id}/config",
    summary="A device's config",
    response_model=DeviceConfigPublic,
    responses=responses(
        CONFIG_EXAMPLE | {"published": None, "publish_detail": None}, 401, 403, 404
    ),
)
def read_config(device_id: str, key: CurrentKey, session: SessionDep) -> DeviceConfigPublic:
    """The interval and thresholds the device is to use; the device may read its own."""
    device = _device_or_404(session, device_id)
    _check_reads(key, device)
    settings = device_settings(session, device_id)
    assert settings is not None  # the device exists
    return _config_public(settings)


@router.put(
    "/{device_id}/config",
    summary="Set a device's config and publish it to the device",
    response_model=DeviceConfigPublic,
    responses=responses(CONFIG_EXAMPLE, 401, 403, 404),
)
def write_config(
    device_id: str, body: DeviceConfigIn, key: ManagerKey, context: ContextDep
) -> DeviceConfigPublic:
    """Store the config in the registry, then publish it retained on the device's config topic.

    Without a configured broker (``AGRIMATCH_MQTT_URL``) nothing is published
    (``published: false``); the stored config is the truth either way, and
    putting it again publishes it again.
    """
    config = ConfigMessage(
        interval_s=body.interval_s,
        thresholds={s: Threshold(b.min, b.max) for s, b in body.thresholds.items()},
    )
    with context.sessions.begin() as session:
        device = _device_or_404(session, device_id)
        _check_manages(key, device.farm_id)
        settings = set_device_settings(session, device_id, config, updated_by=key.label)
        audit.record(
            session,
            actor=key.label,
            action="device.config",
            target=device_id,
            detail=f"interval {config.interval_s:g} s, thresholds on "
            f"{', '.join(sorted(config.thresholds)) or 'none'}",
        )
    # Published only once committed: a device must never run a config the registry lacks.
    if context.publisher is None:
        return _config_public(settings, False, "no broker configured (AGRIMATCH_MQTT_URL)")
    try:
        context.publisher.publish_config(settings.address, settings.config)
    except BrokerUnavailable as exc:
        log.warning("config of %s stored, not published: %s", device_id, masked(str(exc)))
        return _config_public(settings, False, "the broker is unreachable; put it again later")
    return _config_public(settings, True)
