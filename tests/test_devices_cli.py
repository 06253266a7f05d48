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


def _registry(data_dir: Path) -> dict[str, str]:
    settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
    engine = make_engine(database_url(settings))
    migrate(engine)
    with session_factory(engine).begin() as session:
        upsert_scenario(session, parse_scenario(SCENARIO))
    engine.dispose()
    return {"AGRIMATCH_DATA_DIR": str(data_dir), "COLUMNS": "200"}


def test_provision_writes_passwd_and_acl_and_prints_only_paths(tmp_path: Path) -> None:
    env = _registry(tmp_path)
    out = tmp_path / "broker"
    result = CliRunner().invoke(app, ["devices", "provision", "--out", str(out)], env=env)
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


def test_provision_writes_the_files_where_a_compose_file_mounts_them(tmp_path: Path) -> None:
    env = _registry(tmp_path)
    deploy = tmp_path / "deploy"
    args = ["devices", "provision", "--out", str(deploy / "broker"), "--publisher-user", "api"]
    args += ["--password-file", str(deploy / "passwd"), "--acl-file", str(deploy / "mosquitto.acl")]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert (
        "user api\ntopic readwrite agrimatch/v1/+/+/+/config"
        in (deploy / "mosquitto.acl").read_text()
    )
    assert (deploy / "passwd").read_text().count("\napi:$7$") == 1
    assert (deploy / "broker" / "services" / "api.password").stat().st_mode & 0o777 == 0o600
