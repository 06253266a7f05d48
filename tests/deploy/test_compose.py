"""docker-compose.yml, checked by Debian's docker-compose and read as an operator would.

No Docker engine runs here, so what can be proven without one is: the file is
valid for ``docker-compose config`` with the secrets deploy/make-secrets.sh makes,
and the resolved configuration keeps the promises of docs/deploy.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CORE = {
    "broker-users",
    "mosquitto",
    "influxdb",
    "postgres",
    "api",
    "ingest-1",
    "ingest-2",
    "scheduler",
}
OPERATIONS = {"prometheus", "grafana"}
DEMO = {"sim-backfill", "simulator"}
ONE_SHOTS = {"broker-users", "sim-backfill"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the compose project with .env from .env.example and fresh secrets."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose not found: apt-get install docker-compose", pytrace=False)
    root = tmp_path_factory.mktemp("compose")
    shutil.copy(REPO / "docker-compose.yml", root)
    shutil.copy(REPO / ".env.example", root / ".env")
    shutil.copytree(REPO / "deploy", root / "deploy", ignore=shutil.ignore_patterns("*.env"))
    shutil.rmtree(root / "deploy" / "broker", ignore_errors=True)
    made = subprocess.run(
        ["bash", str(root / "deploy" / "make-secrets.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "made" in made.stdout
    return root


def compose(project: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGRIMATCH_", "COMPOSE_"))}
    env.update(variables)
    return subprocess.run(
        ["docker-compose", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def config(project: Path) -> dict[str, Any]:
    result = compose(project, "--profile", "demo", "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def secrets(project: Path) -> dict[str, str]:
    """Every secret make-secrets.sh wrote: name -> value."""
    values = {}
    for env_file in (project / "deploy" / "secrets").glob("*.env"):
        for line in env_file.read_text().splitlines():
            name, _, value = line.partition("=")
            values[name] = value
    return values


def volumes(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each volume; ``docker-compose config`` (1.29) writes them
    as ``source:target:mode``, a bind mount's source an absolute path."""
    out = []
    for volume in service.get("volumes", []):
        source, target, mode = volume.rsplit(":", 2)
        out.append((source, target, mode))
    return out


def test_docker_compose_accepts_the_file_with_the_secrets_make_secrets_writes(config):
    assert set(config["services"]) == CORE | OPERATIONS | DEMO


def test_the_compose_file_and_env_example_hold_no_secret(project):
    made = secrets(project)
    assert made and all(len(v) >= 32 or "://" in v for v in made.values())
    for path in (REPO / "docker-compose.yml", REPO / ".env.example"):
        text = path.read_text()
        leaked = [name for name, value in made.items() if value and value in text]
        assert not leaked, f"{path.name} holds {leaked}"
        # No literal password in an assignment, a URL or a variable's default.
        assert not re.search(r"(PASSWORD|TOKEN|PEPPER)[A-Z_]*[:=]\s*[^\s$#{]", text), path.name
        assert not re.search(r"://[^/\s:@]+:[^@\s$]+@", text), path.name


def test_secrets_reach_each_service_only_from_env_files_it_needs(config):
    services = config["services"]
    env = {name: s.get("environment", {}) for name, s in services.items()}
    assert "AGRIMATCH_API_KEY_PEPPER" in env["api"]
    for name in ("ingest-1", "ingest-2", "scheduler", "simulator"):
        assert "AGRIMATCH_API_KEY_PEPPER" not in env[name], name
    for name in ("ingest-1", "ingest-2"):
        # The place check reads devices' registered farm and field.
        assert env[name]["AGRIMATCH_DATABASE_URL"].startswith("postgresql://agrimatch:")
        assert env[name]["AGRIMATCH_MQTT_URL"].startswith("mqtt://ingest:")
    assert env["simulator"]["AGRIMATCH_MQTT_URL"].startswith("mqtt://simulator:")
    assert "AGRIMATCH_MQTT_URL" not in env["broker-users"]  # provision needs no broker
    # The provisioned ACL's role that may write device configs.
    assert env["api"]["AGRIMATCH_MQTT_URL"].startswith("mqtt://publisher:")
    # One password, two views: InfluxDB's user agrimatch and agrimatch's login agree.
    assert env["influxdb"]["INFLUXDB_USER_PASSWORD"] == env["api"]["AGRIMATCH_INFLUX_PASSWORD"]
    pg_password = env["postgres"]["POSTGRES_PASSWORD"]
    assert f"agrimatch:{pg_password}@postgres:5432" in env["scheduler"]["AGRIMATCH_DATABASE_URL"]
    assert env["grafana"]["REGISTRY_READ_PASSWORD"] == env["postgres"]["GRAFANA_PG_PASSWORD"]
    assert env["grafana"]["INFLUX_READ_PASSWORD"] == env["influxdb"]["INFLUXDB_READ_USER_PASSWORD"]


def test_every_service_has_a_healthcheck_and_waits_for_what_it_needs_to_be_healthy(config):
    services = config["services"]
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        for needed, condition in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully" if needed in ONE_SHOTS else "service_healthy"
            )
            assert condition == {"condition": expected}, (name, needed)
    needs = {name: set(s.get("depends_on", {})) for name, s in services.items()}
    assert {"mosquitto", "influxdb", "postgres"} <= needs["api"]
    assert needs["ingest-1"] == needs["ingest-2"] == {"mosquitto", "influxdb", "postgres"}
    assert needs["mosquitto"] == {"broker-users"} and needs["broker-users"] == {"postgres"}
    assert {"postgres", "influxdb", "api"} <= needs["scheduler"]  # the API migrates first
    assert {"api", "ingest-1", "ingest-2"} <= needs["prometheus"]
    assert {"influxdb", "postgres", "prometheus"} <= needs["grafana"]
    assert needs["simulator"] == {"sim-backfill", "ingest-1", "ingest-2"}


def test_data_lives_in_named_volumes_and_configuration_is_mounted_read_only(config):
    named = set(config["volumes"])
    for name, service in config["services"].items():
        for source, target, mode in volumes(service):
            if name == "broker-users":
                # The one writer of configuration: the broker's passwd and acl.
                assert (target, mode) == ("/broker", "rw"), (source, target, mode)
            elif source.startswith("/"):
                assert mode == "ro", (name, target)  # configuration, never data
            else:
                assert source in named, (name, source)
    data = {
        name: {target for source, target, _ in volumes(s) if not source.startswith("/")}
        for name, s in config["services"].items()
    }
    assert "/mosquitto/data" in data["mosquitto"]
    assert "/var/lib/influxdb" in data["influxdb"]
    assert "/var/lib/postgresql/data" in data["postgres"]
    assert data["api"] == data["scheduler"] == {"/var/lib/agrimatch"}  # models shared
    assert "/prometheus" in data["prometheus"] and "/var/lib/grafana" in data["grafana"]


def test_two_ingest_replicas_share_the_subscription_each_with_its_own_session(config):
    services = config["services"]
    ids = set()
    for name in ("ingest-1", "ingest-2"):
        service = services[name]
        assert service["command"] == ["agrimatch", "ingest"]
        # One replica alone defaults to a plain subscription: two must say shared.
        assert service["environment"]["AGRIMATCH_INGEST_SUBSCRIPTION"] == "shared"
        ids.add(service["environment"]["AGRIMATCH_MQTT_CLIENT_ID"])
        assert service["environment"]["AGRIMATCH_INGEST_METRICS_PORT"] == "9108"
        assert service["stop_grace_period"] == "30s"
    assert len(ids) == 2


def test_the_broker_mounts_the_shipped_config_and_the_provisioned_users(config):
    mounts = {
        target: Path(source).name for source, target, _ in volumes(config["services"]["mosquitto"])
    }
    assert mounts["/mosquitto/config/mosquitto.conf"] == "mosquitto.conf"
    # What `agrimatch devices provision --out deploy/broker` writes.
    assert mounts["/mosquitto/config/acl"] == "acl"
    assert mounts["/mosquitto/config/passwd"] == "passwd"
    sources = {
        Path(source).parent.name
        for source, target, _ in volumes(config["services"]["mosquitto"])
        if target.startswith("/mosquitto/config/") and not target.endswith(".conf")
    }
    assert sources == {"broker"}
    conf = (REPO / "deploy" / "mosquitto.conf").read_text()
    assert "acl_file /mosquitto/config/acl" in conf
    assert "password_file /mosquitto/config/passwd" in conf
    assert re.search(r"^persistence true", conf, re.M)


def test_the_simulator_runs_only_in_the_demo_profile(project, config):
    plain = compose(project, "config")
    assert plain.returncode == 0, plain.stderr
    for name, service in config["services"].items():
        assert (service.get("profiles") == ["demo"]) == (name in DEMO), name
    assert config["services"]["sim-backfill"]["restart"] == "no"
    command = config["services"]["sim-backfill"]["command"]
    assert command[:3] == ["agrimatch", "sim", "backfill"] and "default" in command


def test_broker_users_provisions_the_simulator_only_for_a_demo_scenario(project):
    for scenario in ("", "default"):
        result = compose(project, "--profile", "demo", "config", DEMO_SCENARIO=scenario)
        assert result.returncode == 0, result.stderr
        services = yaml.safe_load(result.stdout)["services"]
        provision = services["broker-users"]
        assert provision["restart"] == "no" and provision["user"] == "root"
        assert provision["environment"]["SIMULATOR_SCENARIO"] == scenario
        # `config` writes the file back escaped ($$), as compose would read it again.
        script = provision["command"][-1].replace("$$", "$")
        assert "agrimatch devices provision --out /broker" in script
        assert '${SIMULATOR_SCENARIO:+--simulator-scenario "$SIMULATOR_SCENARIO"}' in script
        assert "chown 1883:1883 /broker/passwd /broker/acl" in script
        mounts = {target: source for source, target, _ in volumes(provision)}
        assert Path(mounts["/broker"]).parts[-2:] == ("deploy", "broker")
        simulator = services["simulator"]
        assert simulator["environment"]["SIMULATOR_SCENARIO"] == scenario
        assert 'test -n "$SIMULATOR_SCENARIO"' in simulator["command"][-1].replace("$$", "$")
        assert "set DEMO_SCENARIO" in simulator["command"][-1]
        # The simulator registers its devices, so it reads the registry's URL.
        assert simulator["environment"]["AGRIMATCH_DATABASE_URL"].startswith("postgresql://")
    # The option broker-users passes is a real one of this agrimatch.
    assert (
        "--simulator-scenario"
        in subprocess.run(
            [sys.executable, "-m", "agrimatch", "devices", "provision", "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "200"},
        ).stdout
    )


def test_only_the_broker_api_and_grafana_are_published_and_prometheus_on_loopback(config):
    published = {
        name: [p for p in service.get("ports", [])] for name, service in config["services"].items()
    }
    assert {name for name, ports in published.items() if ports} == {
        "mosquitto",
        "api",
        "grafana",
        "prometheus",
    }
    assert published["prometheus"] == ["127.0.0.1:9090:9090/tcp"]


def test_the_image_runs_as_an_unprivileged_user_and_keeps_build_tools_out():
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert len(stages) == 2, "a build stage and a runtime stage"
    runtime = stages[-1]
    assert re.search(r"^USER agrimatch", runtime, re.M)
    assert "COPY --from=build /opt/agrimatch /opt/agrimatch" in runtime
    assert not re.search(r"apt-get|gcc|build-essential|pip install", runtime)
    assert "--only-binary=:all:" in stages[0]  # no dependency compiled from source
    assert 'CMD ["agrimatch", "serve"]' in runtime


def test_make_secrets_keeps_what_exists(project):
    before = secrets(project)
    services = sorted(p.name for p in (project / "deploy" / "broker" / "services").iterdir())
    assert services == [
        "ingest.password",
        "operator.password",
        "publisher.password",
        "simulator.password",
    ]
    again = subprocess.run(
        ["bash", str(project / "deploy" / "make-secrets.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "made" not in again.stdout and "kept" in again.stdout
    assert secrets(project) == before
    modes = {oct(p.stat().st_mode & 0o777) for p in (project / "deploy" / "secrets").glob("*.env")}
    assert modes == {"0o600"}


def test_the_secrets_stay_out_of_the_image_and_the_repository(project):
    from tests.test_dockerignore import excluded

    made = sorted(p.name for p in (project / "deploy" / "secrets").iterdir())
    assert "agrimatch-api.env" in made and ".pw-postgres" in made
    for name in made:
        if name not in ("README.md", ".gitignore"):
            assert excluded(f"deploy/secrets/{name}"), name
    assert excluded("deploy/broker/services/ingest.password")
    assert excluded("deploy/broker/passwd") and excluded("deploy/broker/devices/dev-1.password")
    for path in ("deploy/secrets/agrimatch-api.env", "deploy/broker/services/ingest.password"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert ignored.returncode == 0, f"git would commit {path}"
