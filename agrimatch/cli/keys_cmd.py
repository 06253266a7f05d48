"""``agrimatch keys create | list | revoke``: the API keys in the registry.

A new key's token goes to stdout alone (``TOKEN=$(agrimatch keys create ...)``)
and is shown this once; everything else goes to stderr or into tables. No
command ever prints a stored hash.
"""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from agrimatch.cli.common import console, err_console, fail, settings_or_exit

keys_app = typer.Typer(
    help="API keys: create (the token is shown once), list, revoke.", no_args_is_help=True
)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="device, agronomist, platform or admin")],
    name: Annotated[str, typer.Option(help="Who or what holds the key")],
    device: Annotated[str | None, typer.Option(help="The device of a device key")] = None,
    farm: Annotated[
        list[str] | None, typer.Option(help="A farm of an agronomist key (repeat for more)")
    ] = None,
    platform: Annotated[str | None, typer.Option(help="The platform of a platform key")] = None,
) -> None:
    """Create an API key; its token is printed once, on stdout, and stored nowhere."""
    from agrimatch.auth import ApiKeyError, create_key, pepper
    from agrimatch.cli.wiring import open_registry

    settings = settings_or_exit()
    sessions = open_registry(settings)
    try:
        with sessions.begin() as session:
            info, token = create_key(
                session,
                name=name,
                role=role,
                pepper=pepper(settings),
                device_id=device,
                farm_ids=farm or (),
                platform_id=platform,
                actor=f"cli:{getpass.getuser()}",
            )
    except ApiKeyError as exc:
        raise fail(str(exc)) from None
    scope = info.device_id or info.platform_id or ", ".join(sorted(info.farm_ids)) or "all"
    err_console.print(
        f"created key {info.id} ({info.name}), role {info.role.value}, scope {scope}; "
        "the token below is shown only now:",
        highlight=False,
    )
    typer.echo(token)


@keys_app.command("list")
def keys_list(
    active: Annotated[bool, typer.Option("--active", help="Leave revoked keys out")] = False,
) -> None:
    """The keys: id, name, role, scope, when created, last used and revoked (never secrets)."""
    from agrimatch.auth import list_keys
    from agrimatch.cli.wiring import open_registry

    sessions = open_registry(settings_or_exit())
    with sessions() as session:
        keys = list_keys(session, include_revoked=not active)
    table = Table("id", "name", "role", "scope", "created", "last used", "revoked")
    for key in keys:
        scope = key.device_id or key.platform_id or ", ".join(sorted(key.farm_ids)) or "all"
        table.add_row(
            key.id,
            key.name,
            key.role.value,
            scope,
            _when(key.created_at),
            _when(key.last_used_at),
            _when(key.revoked_at),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id")]) -> None:
    """Revoke a key for good; requests with it are refused from now on."""
    from agrimatch.auth import ApiKeyError, revoke_key
    from agrimatch.cli.wiring import open_registry

    sessions = open_registry(settings_or_exit())
    try:
        with sessions.begin() as session:
            info = revoke_key(session, key_id, actor=f"cli:{getpass.getuser()}")
    except ApiKeyError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"revoked key {info.id} ({info.name}) at {_when(info.revoked_at)}", highlight=False
    )
