"""The broker's password and ACL files, written from the registry.

``agrimatch devices provision`` calls :func:`write_broker_files`. Mosquitto
reads both files at start and again on SIGHUP, so a new device can log in
once they are rewritten and the broker told.

Secrets never reach stdout: a password made here is written to a file of its
own with mode 0600 and reported by path. Service passwords in such files are
reused on the next run, so rerunning the command keeps the services' logins.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from agrimatch.broker_access import (
    SIMULATOR_USER,
    ServiceUsers,
    acl_file,
    hash_password,
    new_password,
    password_file,
    simulator_acl,
)
from agrimatch.contract.topics import DeviceAddress
from agrimatch.registry import audit
from agrimatch.registry.devices import broker_logins, issue_mqtt_credentials

PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
SECRET_MODE = 0o600


@dataclass(slots=True)
class BrokerFiles:
    """What :func:`write_broker_files` wrote: the two broker files and the password files."""

    password_file: Path
    acl_file: Path
    devices: int = 0
    # Files holding a password made by this run (services and newly issued devices).
    new_password_files: list[Path] = field(default_factory=list)


def _write_secret(path: Path, text: str) -> None:
    # Created 0600 from the start: never a moment when another user may read it.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SECRET_MODE)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, SECRET_MODE)  # an existing file keeps its mode through O_CREAT


def _service_password(out_dir: Path, user: str, report: BrokerFiles) -> str:
    path = out_dir / "services" / f"{user}.password"
    if path.exists():
        return path.read_text().strip()
    password = new_password()
    _write_secret(path, password + "\n")
    report.new_password_files.append(path)
    return password


def write_broker_files(
    session: Session,
    out_dir: Path,
    *,
    actor: str,
    issue_missing: bool = True,
    services: ServiceUsers | None = None,
    password_path: Path | None = None,
    acl_path: Path | None = None,
    simulator: Sequence[DeviceAddress] | None = None,
) -> BrokerFiles:
    """Write ``out_dir/passwd`` and ``out_dir/acl`` for every device in the registry.

    Service accounts (ingest, operator, publisher) get the password in
    ``out_dir/services/<user>.password``, made if absent. With
    ``issue_missing``, a device that never had an MQTT password (one
    registered from a scenario) is issued one, written to
    ``out_dir/devices/<id>.password`` (0600) and recorded in the audit log;
    without it such a device is left out of the password file (it cannot log in).
    ``services`` renames the service users; ``password_path`` / ``acl_path``
    put the two broker files elsewhere than ``out_dir`` (a compose file's mounts).
    ``simulator`` (a demo's): a ``simulator`` login, password kept as the services'
    are, that may write these devices' telemetry and status only.
    """
    services = services or ServiceUsers()
    out_dir.mkdir(parents=True, exist_ok=True)
    report = BrokerFiles(
        password_file=password_path or out_dir / PASSWORD_FILE,
        acl_file=acl_path or out_dir / ACL_FILE,
    )
    users: tuple[str, ...] = (services.ingest, services.operator, services.publisher)
    if simulator is not None:
        users += (SIMULATOR_USER,)
    logins = [(user, hash_password(_service_password(out_dir, user, report))) for user in users]
    if issue_missing:
        for address, hashed in broker_logins(session):
            if hashed is not None:
                continue
            credentials = issue_mqtt_credentials(session, address.device)
            path = out_dir / "devices" / f"{address.device}.password"
            _write_secret(path, credentials.password + "\n")
            report.new_password_files.append(path)
            audit.record(
                session,
                actor=actor,
                action="device.provision",
                target=address.device,
                detail="MQTT password issued by devices provision",
            )
    devices = broker_logins(session)
    logins += [(address.device, hashed) for address, hashed in devices if hashed is not None]
    _write_secret(report.password_file, password_file(logins))
    # The ACL holds no secret, but it maps the whole fleet: not for every local user either.
    acl = acl_file((address for address, _ in devices), services)
    if simulator is not None:
        acl += simulator_acl(simulator)
    _write_secret(report.acl_file, acl)
    report.devices = sum(1 for _, hashed in devices if hashed is not None)
    return report
