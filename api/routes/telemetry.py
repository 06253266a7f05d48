"""``POST /v1/telemetry``: a device's SenML pack, the HTTP fallback of MQTT."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from agrimatch.contract.reasons import Reason
from agrimatch.contract.topics import DeviceAddress
from agrimatch.registry.repository import get_device
from api.context import ApiContext
from api.deps import ContextDep, DeviceKey
from api.errors import ProblemError
from api.openapi import responses
from api.schemas.telemetry import RecordRejected, TelemetryAccepted

router = APIRouter(tags=["devices"])

SENML_JSON = "application/senml+json"
ACCEPTED_MEDIA_TYPES = (SENML_JSON, "application/json")

PACK_EXAMPLE = [
    {"bn": "urn:dev:agrimatch:garlic-coop-1-north-d1:", "bt": 1764072000, "n": "air_temp",
     "u": "Cel", "v": 21.4},
    {"n": "air_rh", "u": "%RH", "v": 63.0},
    {"n": "soil_moisture_10cm", "u": "%", "v": 27.5},
    {"n": "rain", "u": "mm", "v": 0.0, "t": -60},
]  # fmt: skip

# Whole packs refused: the status that tells the device what happened.
_REJECTED_STATUS = {
    Reason.DEVICE_MISMATCH: 403,
    Reason.TOO_LARGE: 413,
}


_REQUEST_BODY = {
    "required": True,
    "description": "A SenML (RFC 8428) JSON pack named for the key's device",
    "content": {
        media: {"schema": {"type": "array", "items": {"type": "object"}}, "example": PACK_EXAMPLE}
        for media in ACCEPTED_MEDIA_TYPES
    },
}
ACCEPTED_EXAMPLE = {
    "device": "garlic-coop-1-north-d1",
    "readings_stored": 3,
    "records_rejected": [
        {
            "index": 3,
            "reason": "out_of_range",
            "detail": "air_rh = 140.0 %RH is outside its range [0.0, 100.0] %RH",
        }
    ],
}


@router.post(
    "/telemetry",
    summary="Post a SenML pack of readings",
    response_model=TelemetryAccepted,
    responses=responses(
        ACCEPTED_EXAMPLE,
        401,
        403,
        413,
        415,
        429,
        503,
        description="Good readings stored (idempotently), bad records dead-lettered and listed",
    ),
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def post_telemetry(
    request: Request, key: DeviceKey, context: ContextDep
) -> TelemetryAccepted:
    """Store a device's readings through the same pipeline as MQTT.

    The key's device is the sender: its registry row gives the farm and field
    an MQTT topic would carry, and a pack naming another device is refused
    (403). The answer comes once the good readings are durably stored (the
    same point posted twice is stored once); each refused record is listed
    with its reason. While the store is down: 503 with ``Retry-After``, and
    nothing is stored.
    """
    media = request.headers.get("content-type", SENML_JSON).split(";")[0].strip().lower()
    if media not in ACCEPTED_MEDIA_TYPES:
        raise ProblemError(
            415, f"send the pack as {' or '.join(ACCEPTED_MEDIA_TYPES)}, not {media}"
        )
    assert key.device_id is not None  # a device key's scope
    # Before the body is read: an over-eager device costs as little as possible.
    wait_s = context.device_rates.take(key.device_id)
    if wait_s > 0:
        raise ProblemError(
            429,
            f"device {key.device_id!r} posts faster than "
            f"{context.device_rates.rate_per_s:g} packs/s (burst {context.device_rates.burst})",
            slug="too-many-requests",
            title="Too many requests",
            headers={"Retry-After": str(context.device_rates.retry_after_s(wait_s))},
        )
    payload = await request.body()
    address = await run_in_threadpool(_address_of, context, key.device_id)
    outcome = await run_in_threadpool(context.telemetry.ingest, address, payload)
    if outcome.rejected is not None:
        letter = outcome.rejected
        raise ProblemError(
            _REJECTED_STATUS.get(letter.reason, 422),
            f"the pack was refused as a whole ({letter.reason.value}): {letter.detail}",
            slug=f"telemetry-{letter.reason.value.replace('_', '-')}",
            title="Telemetry pack refused",
            reason=letter.reason.value,
        )
    return TelemetryAccepted(
        device=address.device,
        readings_stored=outcome.readings_stored,
        records_rejected=[
            RecordRejected(index=p.index, reason=p.reason.value, detail=p.detail)
            for p in outcome.problems
        ],
    )


def _address_of(context: ApiContext, device_id: str) -> DeviceAddress:
    def read() -> DeviceAddress | None:
        with context.sessions() as session:
            device = get_device(session, device_id)
            return (
                None
                if device is None
                else DeviceAddress(device.farm_id, device.field_id, device.id)
            )

    address = context.lookups.device(device_id, read)
    if address is None:  # deleted since the key was checked (its key goes with it)
        raise ProblemError(403, f"device {device_id!r} is no longer registered", slug="forbidden")
    return address
