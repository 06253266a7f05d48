"""The audit log: every admin action written beside the change, read by admins only."""

from __future__ import annotations

import getpass
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agrimatch.cli import app
from agrimatch.registry import make_engine, session_factory
from agrimatch.registry.audit import entries
from tests.api.conftest import DEVICE_A, bearer
from tests.api.test_keys_cli import env as keys_cli_env

FARM = {"farm": "pear-coop-1", "region": "korla", "lat": 41.7, "lon": 86.1,
        "region_name": "Korla, Xinjiang", "elevation_m": 930}  # fmt: skip
FIELD = {"field": "south", "crop": "garlic", "area_ha": 1.2, "planted_on": "2025-10-03",
         "soil": "loam", "lat": 34.71, "lon": 113.91}  # fmt: skip
CONFIG = {"interval_s": 300.0, "thresholds": {}}


def _all(client: TestClient, token: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        got = client.get("/v1/audit", params=params, headers=bearer(token))
        assert got.status_code == 200, got.text
        items += got.json()["items"]
        cursor = got.json()["next_cursor"]
        if cursor is None:
            return items


def test_admin_actions_are_in_the_audit_log_newest_first_with_who_did_them(
    client: TestClient, tokens: dict[str, str]
) -> None:
    admin, agronomist = bearer(tokens["admin"]), bearer(tokens["agronomist"])
    assert client.post("/v1/farms", json=FARM, headers=admin).status_code == 201
    url = "/v1/farms/garlic-coop-1/fields"
    assert client.post(url, json=FIELD, headers=agronomist).status_code == 201
    provisioned = client.post(
        "/v1/devices", json={"farm_id": "garlic-coop-1", "field_id": "south"}, headers=agronomist
    )
    assert provisioned.status_code == 201
    config_url = f"/v1/devices/{DEVICE_A}/config"
    assert client.put(config_url, json=CONFIG, headers=agronomist).status_code == 200
    assert client.delete(f"{url}/south", headers=agronomist).status_code == 200
    assert client.delete("/v1/farms/pear-coop-1", headers=admin).status_code == 200

    logged = _all(client, tokens["admin"])
    ids = [e["id"] for e in logged]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    actions = [(e["action"], e["target"]) for e in logged]
    device = provisioned.json()["device"]["id"]
    key_id = provisioned.json()["api_key"]["id"]
    assert actions[:7] == [
        ("farm.delete", "pear-coop-1"),
        ("field.delete", "garlic-coop-1/south"),
        ("device.config", DEVICE_A),
        ("device.provision", device),
        ("key.create", key_id),  # the device's key, in the same transaction
        ("field.create", "garlic-coop-1/south"),
        ("farm.create", "pear-coop-1"),
    ]
    by_agronomist = [e for e in logged[1:6] if e["action"] != "farm.delete"]
    assert all("agronomist" in str(e["actor"]) for e in by_agronomist)
    secrets = [provisioned.json()["mqtt"]["password"], provisioned.json()["api_key"]["token"]]
    assert not any(s in str(logged) for s in secrets)


def test_only_admins_read_the_audit_log(client: TestClient, tokens: dict[str, str]) -> None:
    for role in ("agronomist", "platform", "device_a"):
        got = client.get("/v1/audit", headers=bearer(tokens[role]))
        assert got.status_code == 403
        assert got.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/audit").status_code == 401


cli_env = keys_cli_env  # the fixture: a CLI run's data dir with the test scenario


def test_keys_created_and_revoked_from_the_cli_are_audited_as_the_user(
    cli_env: dict[str, str],
) -> None:
    env = cli_env
    runner = CliRunner()
    args = ["keys", "create", "--role", "admin", "--name", "night ops"]
    token = runner.invoke(app, args, env=env).stdout.strip()
    key_id = token.split("_")[1]
    assert runner.invoke(app, ["keys", "revoke", key_id], env=env).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", key_id], env=env).exit_code == 0  # no change
    engine = make_engine(f"sqlite:///{Path(env['AGRIMATCH_DATA_DIR']) / 'registry.sqlite3'}")
    with session_factory(engine)() as session:
        logged = [(e.action, e.target, e.actor) for e in entries(session)]
    engine.dispose()
    user = f"cli:{getpass.getuser()}"
    assert logged == [("key.revoke", key_id, user), ("key.create", key_id, user)]
    assert token not in str(logged)
