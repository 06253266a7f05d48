"""``agrimatch keys``: the token printed once, lists without secrets, revocation."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agrimatch.auth import authenticate
from agrimatch.cli import app
from agrimatch.registry import database_url, make_engine, migrate, session_factory, upsert_scenario
from agrimatch.scenario import parse_scenario
from agrimatch.settings import Settings
from tests.api.conftest import DEVICE_A, SCENARIO

PEPPER = "cli-pepper"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI run: a data dir whose registry holds the test scenario."""
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    engine = make_engine(database_url(settings))
    migrate(engine)
    with session_factory(engine).begin() as session:
        upsert_scenario(session, parse_scenario(SCENARIO))
    engine.dispose()
    # COLUMNS: tables wide enough that no cell wraps.
    return {
        "AGRIMATCH_DATA_DIR": str(tmp_path),
        "AGRIMATCH_API_KEY_PEPPER": PEPPER,
        "COLUMNS": "200",
    }


def _authenticate(data_dir: str, token: str) -> object:
    engine = make_engine(f"sqlite:///{Path(data_dir) / 'registry.sqlite3'}")
    try:
        with session_factory(engine).begin() as session:
            return authenticate(session, token, PEPPER.encode())
    finally:
        engine.dispose()


def test_a_created_key_is_printed_once_and_authenticates(env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["keys", "create", "--role", "device", "--device", DEVICE_A, "--name", "node 1"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("agm_") and "\n" not in token
    assert "shown only now" in result.stderr
    assert _authenticate(env["AGRIMATCH_DATA_DIR"], token) is not None

    listed = runner.invoke(app, ["keys", "list"], env=env)
    assert listed.exit_code == 0
    assert "node 1" in listed.stdout and DEVICE_A in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout


def test_an_agronomist_key_takes_several_farms(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("keys", "create", "--role", "agronomist", "--name", "coop"),
            *("--farm", "garlic-coop-1", "--farm", "garlic-coop-2"),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    key = _authenticate(env["AGRIMATCH_DATA_DIR"], result.stdout.strip())
    assert key.farm_ids == {"garlic-coop-1", "garlic-coop-2"}


def test_a_revoked_key_no_longer_authenticates(env: dict[str, str]) -> None:
    runner = CliRunner()
    token = runner.invoke(
        app, ["keys", "create", "--role", "admin", "--name", "ops"], env=env
    ).stdout.strip()
    key_id = token.split("_")[1]
    result = runner.invoke(app, ["keys", "revoke", key_id], env=env)
    assert result.exit_code == 0, result.output
    assert f"revoked key {key_id}" in result.stdout
    assert _authenticate(env["AGRIMATCH_DATA_DIR"], token) is None
    active = runner.invoke(app, ["keys", "list", "--active"], env=env)
    assert key_id not in active.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "--role", "device", "--name", "x"],
        ["keys", "create", "--role", "device", "--device", "nope", "--name", "x"],
        ["keys", "revoke", "000000000000"],
    ],
    ids=["no-scope", "unknown-device", "unknown-key"],
)
def test_a_key_command_that_cannot_be_done_fails_with_the_reason(
    env: dict[str, str], args: list[str]
) -> None:
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2
    assert "error:" in result.stderr
    assert result.stdout == ""
