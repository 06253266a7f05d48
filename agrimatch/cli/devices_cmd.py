"""``agrimatch devices provision``: the broker's password file and ACL from the registry.

Prints only file paths and counts; every password it makes is in a 0600 file.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from agrimatch.cli.common import console, err_console, fail, settings_or_exit

devices_app = typer.Typer(help="Devices: the broker's logins and ACL.", no_args_is_help=True)


@devices_app.command("provision")
def devices_provision(
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for passwd, acl and password files; default DATA_DIR/broker"),
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="Write the password file here instead of DIR/passwd")
    ] = None,
    acl_file: Annotated[
        Path | None, typer.Option(help="Write the ACL here instead of DIR/acl")
    ] = None,
    publisher_user: Annotated[
        str, typer.Option(help="User name of the API's config publisher")
    ] = "publisher",
    issue_missing: Annotated[
        bool,
        typer.Option(help="Give devices without an MQTT password one (written to DIR/devices/)"),
    ] = True,
    simulator_scenario: Annotated[
        str | None,
        typer.Option(
            help="A demo: add login `simulator` (password in DIR/services/) that may write "
            "this scenario's devices' telemetry and status, and nothing else"
        ),
    ] = None,
) -> None:
    """Write Mosquitto's password file and ACL for every registered device and service.

    Point mosquitto.conf's password_file and acl_file at them and send the
    broker SIGHUP (or restart it) to apply.
    """
    from agrimatch.broker_access import BrokerAccessError, ServiceUsers
    from agrimatch.cli.wiring import open_registry
    from agrimatch.registry.broker_files import write_broker_files

    settings = settings_or_exit()
    simulated = None
    if simulator_scenario:
        from agrimatch.cli.fleet_wiring import fleet_specs

        try:
            # The addresses `agrimatch sim --scenario` publishes at (they do not depend
            # on the interval or the seed).
            specs, _ = fleet_specs(simulator_scenario, 1, 1, 60.0)
        except (OSError, ValueError) as exc:
            raise fail(f"--simulator-scenario {simulator_scenario!r}: {exc}") from None
        simulated = [spec.address for spec in specs]
    out_dir = out or settings.data_dir / "broker"
    sessions = open_registry(settings)
    try:
        with sessions.begin() as session:
            report = write_broker_files(
                session,
                out_dir,
                actor=f"cli:{getpass.getuser()}",
                issue_missing=issue_missing,
                services=ServiceUsers(publisher=publisher_user),
                password_path=password_file,
                acl_path=acl_file,
                simulator=simulated,
            )
    except (BrokerAccessError, OSError) as exc:
        raise fail(f"cannot write the broker files in {out_dir}: {exc}") from None
    accounts = "3 service accounts" + (
        f", simulator for {len(simulated)} devices" if simulated is not None else ""
    )
    err_console.print(
        f"{report.devices} devices and {accounts}; apply with SIGHUP to the broker",
        highlight=False,
    )
    console.print(f"password_file {report.password_file}", highlight=False)
    console.print(f"acl_file {report.acl_file}", highlight=False)
    for path in report.new_password_files:
        console.print(f"new password in {path}", highlight=False)
