"""Who may do what on the MQTT broker: Mosquitto password hashes and the ACL.

Pure: no I/O here. ``agrimatch devices provision`` writes the files this
module renders; the registry stores only the hashes it makes.

Password hashes are in Mosquitto 2.0's own format, the one ``mosquitto_passwd``
writes and the broker reads from its ``password_file``:
``$7$<iterations>$<base64 salt>$<base64 hash>`` — PBKDF2-HMAC-SHA512 over the
password with a 12-byte random salt, 64 bytes of output, standard base64 with
padding. Checked against Debian's mosquitto_passwd 2.0.11 (its lines verify
here) and against the broker itself (``tests/test_broker_access.py``: a line
made here lets the right password in and keeps a wrong one out).

The ACL binds a device's credentials (username = device id) to its own
topic prefix, ``agrimatch/v1/{farm}/{field}/{device}/``, as the registry has
it: a device cannot publish as another device, nor under another farm or
field with its own id. Services get roles:

* ``ingest`` reads telemetry on the shared subscription and writes dead letters;
* ``operator`` reads dead letters and every device's status;
* ``publisher`` (the API) writes every device's retained config;
* ``simulator`` (a demo only, when provisioned with a scenario) writes the
  telemetry and status of that scenario's devices, each at its own topics:
  the simulator publishes for all its devices over one login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from agrimatch.contract.topics import DeviceAddress

HASH_PREFIX = "$7$"
# What mosquitto_passwd 2.0 uses (101 iterations, 12-byte salt, SHA-512 output).
# More iterations would slow every broker login; the passwords are random
# 192-bit strings, which no dictionary guesses, so 101 rounds lose nothing.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64
PASSWORD_BYTES = 24  # 192 random bits, 32 URL-safe characters

INGEST_USER = "ingest"
OPERATOR_USER = "operator"
PUBLISHER_USER = "publisher"
SIMULATOR_USER = "simulator"
SERVICE_USERS = (INGEST_USER, OPERATOR_USER, PUBLISHER_USER)

DEAD_LETTER_TOPICS = "agrimatch/v1/_dead/#"
SHARED_TELEMETRY = "$share/ingest/agrimatch/v1/+/+/+/telemetry"
ALL_TELEMETRY = "agrimatch/v1/+/+/+/telemetry"
ALL_STATUS = "agrimatch/v1/+/+/+/status"
ALL_CONFIG = "agrimatch/v1/+/+/+/config"


class BrokerAccessError(ValueError):
    """A name or hash that cannot go into a Mosquitto password or ACL file."""


def new_password() -> str:
    """A fresh random MQTT password (URL-safe, so it fits an ``mqtt://`` URL unescaped)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """The Mosquitto 2.0 ``$7$`` hash of ``password`` (a fresh salt unless given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return (
        f"{HASH_PREFIX}{iterations}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def password_matches(password: str, hashed: str) -> bool:
    """Whether ``password`` is the one ``hashed`` (a ``$7$`` line's hash part) was made from."""
    parts = hashed.split("$")
    # "$7$101$salt$hash".split("$") == ["", "7", "101", "salt", "hash"]
    if len(parts) != 5 or parts[0] or parts[1] != "7" or not parts[2].isdigit():
        raise BrokerAccessError("not a mosquitto 2.0 $7$ hash")
    salt = base64.b64decode(parts[3])
    expected = base64.b64decode(parts[4])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(expected))
    return hmac.compare_digest(digest, expected)


def _check_name(user: str) -> None:
    # A colon ends the username in the password file; whitespace or a newline
    # would let one entry write another line of the ACL.
    if not user or any(c in user for c in ":#+/$") or any(c.isspace() for c in user):
        raise BrokerAccessError(f"{user!r} cannot be a broker username")


def password_file(entries: Iterable[tuple[str, str]]) -> str:
    """A Mosquitto ``password_file``: one ``user:hash`` line per ``(user, hash)``."""
    lines = []
    for user, hashed in entries:
        _check_name(user)
        if not hashed.startswith(HASH_PREFIX) or any(c.isspace() for c in hashed):
            raise BrokerAccessError(f"the hash of {user!r} is not a mosquitto $7$ hash")
        lines.append(f"{user}:{hashed}\n")
    return "".join(lines)


@dataclass(frozen=True, slots=True)
class ServiceUsers:
    """The usernames of the service roles (defaults: ingest, operator, publisher)."""

    ingest: str = INGEST_USER
    operator: str = OPERATOR_USER
    publisher: str = PUBLISHER_USER


def acl_file(devices: Iterable[DeviceAddress], services: ServiceUsers | None = None) -> str:
    """A Mosquitto ``acl_file`` binding each device to its registered place, and the roles.

    No ``pattern`` line: a pattern such as ``agrimatch/v1/+/+/%u/telemetry``
    lets a device name any farm and field; each device gets its own topics.
    A user with no entry here may do nothing, so an unregistered device with
    a valid password still cannot publish.
    """
    services = services or ServiceUsers()
    for user in (services.ingest, services.operator, services.publisher):
        _check_name(user)
    out = [
        "# Written by `agrimatch devices provision` from the registry; do not edit by hand.",
        "# Each device writes only its own telemetry and status and reads only its own config.",
        "",
        f"user {services.ingest}",
        f"topic read {SHARED_TELEMETRY}",
        f"topic read {ALL_TELEMETRY}",
        f"topic write {DEAD_LETTER_TOPICS}",
        "",
        f"user {services.operator}",
        f"topic read {DEAD_LETTER_TOPICS}",
        f"topic read {ALL_STATUS}",
        "",
        f"user {services.publisher}",
        f"topic readwrite {ALL_CONFIG}",
    ]
    return "\n".join(out) + "\n" + device_acl(devices)


def simulator_acl(devices: Iterable[DeviceAddress], user: str = SIMULATOR_USER) -> str:
    """The demo simulator's part of the ACL: ``user`` may write the telemetry and status
    of exactly ``devices`` (a scenario's), at their places, and nothing else."""
    _check_name(user)
    out = ["", f"user {user}"]
    for address in sorted(devices, key=lambda a: a.device):
        out += [f"topic write {address.telemetry_topic}", f"topic write {address.status_topic}"]
    return "\n".join(out) + "\n"


def device_acl(devices: Iterable[DeviceAddress]) -> str:
    """The devices' part of the ACL: each may write its own telemetry and status and
    read its own config, at its registered place."""
    out = []
    for address in sorted(devices, key=lambda a: a.device):
        _check_name(address.device)
        out += [
            "",
            f"user {address.device}",
            f"topic write {address.telemetry_topic}",
            f"topic write {address.status_topic}",
            f"topic read {address.config_topic}",
        ]
    return "\n".join(out) + "\n" if out else ""
