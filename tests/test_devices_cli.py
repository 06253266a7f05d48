"""``agrimatch devices provision``: the broker's files from the registry, secrets only in files."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from agrimatch.broker_access import password_matches
from agrimatch.cli import app
from agrimatch.registry import database_url, make_engine, migrate, session_factory, upsert_scenario
from agrimatch.scenario import parse_scenario
from agrimatch.settings import Settings
from tests.api.conftest import DEVICE_A, DEVICE_C, SCENARIO


def test_provision_writes_passwd_and_acl_and_prints_only_paths(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    engine = make_engine(database_url(settings))
    migrate(engine)
    with session_factory(engine).begin() as session:
        upsert_scenario(session, parse_scenario(SCENARIO))
    engine.dispose()
    out = tmp_path / "broker"
    result = CliRunner().invoke(
        app,
        ["devices", "provision", "--out", str(out)],
        env={"AGRIMATCH_DATA_DIR": str(tmp_path), "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert f"password_file {out / 'passwd'}" in result.output
    assert f"acl_file {out / 'acl'}" in result.output
    password = (out / "devices" / f"{DEVICE_A}.password").read_text().strip()
    ingest_password = (out / "services" / "ingest.password").read_text().strip()
    assert password not in result.output and ingest_password not in result.output
    logins = dict(line.split(":", 1) for line in (out / "passwd").read_text().split())
    assert set(logins) >= {"ingest", "operator", "publisher", DEVICE_A, DEVICE_C}
    assert password_matches(password, logins[DEVICE_A])
    acl = (out / "acl").read_text()
    assert (
        f"user {DEVICE_C}\ntopic write agrimatch/v1/garlic-coop-2/east/{DEVICE_C}/telemetry" in acl
    )
