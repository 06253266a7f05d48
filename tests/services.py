"""Real InfluxDB and Mosquitto servers for tests, each in its own temp dir.

Every server binds 127.0.0.1 only, on ports picked free at construction, and
keeps its data and log in its directory. ``stop()`` / ``start()`` bring the
same server back on the same port with the same data, which is what an outage
test needs. The pytest fixtures in ``conftest.py`` make sure every process is
stopped, also when a test fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

LOCALHOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


class ServiceNotInstalled(RuntimeError):
    """The server binary is missing; the message names the Debian package."""


class ServiceFailed(RuntimeError):
    """The server did not come up; the message carries its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, debian_package: str) -> str:
    """Path of ``name``; daemons live in /usr/sbin, which a user's PATH may lack."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise ServiceNotInstalled(
            f"{name} not found: install the Debian package {debian_package!r} "
            f"(apt-get install {debian_package})"
        )
    return found


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _ServerProcess:
    """One server process: start, wait until ready, stop; restartable in place."""

    name = "server"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.output_path = root / "output.log"  # the process's stdout/stderr
        self._proc: subprocess.Popen[bytes] | None = None

    # -- what each server defines ------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of what the server wrote (for failure messages)."""
        return _tail(self.output_path, lines)

    # -- lifecycle -----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the process and return once it answers; raise with the log tail if not."""
        if self.running:
            return
        with self.output_path.open("ab") as out:
            self._proc = subprocess.Popen(
                self._command(),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C on pytest must not hit the server before
                # the fixture finalizer has stopped it cleanly.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise ServiceFailed(
                    f"{self.name} exited with code {code} while starting:\n{self.log_tail()}"
                )
            if self._is_ready():
                return
            time.sleep(0.05)
        self.kill()
        raise ServiceFailed(
            f"{self.name} did not become ready within {timeout_s:.0f}s:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (a clean shutdown: the server saves its state) and wait; SIGKILL if stuck."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: a crash, the server gets no chance to save anything."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None

    def __enter__(self) -> _ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class InfluxServer(_ServerProcess):
    """``influxd`` (1.x) with its own meta/data/wal dirs, HTTP on 127.0.0.1.

    ``auth=True`` turns on HTTP authentication: 1.x then lets the first
    ``CREATE USER ... WITH ALL PRIVILEGES`` through unauthenticated and
    refuses every other request without valid credentials.
    """

    name = "influxd"

    def __init__(self, root: Path, auth: bool = False) -> None:
        self.binary = find_binary("influxd", "influxdb")
        self.auth = auth
        super().__init__(root)
        self.http_port = free_port()
        self.rpc_port = free_port()
        self.config_path = root / "influxdb.conf"
        self.config_path.write_text(self._config())

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.http_port}"

    def _config(self) -> str:
        # Key names as printed by `influxd config` of Debian's 1.6.7. Debian
        # renamed the top-level switch to `reporting-enabled`; upstream builds
        # read `reporting-disabled` (unknown keys are ignored), so both are set.
        return f"""\
reporting-enabled = false
reporting-disabled = true
bind-address = "{LOCALHOST}:{self.rpc_port}"

[meta]
  dir = "{self.root / "meta"}"
  logging-enabled = false

[data]
  dir = "{self.root / "data"}"
  wal-dir = "{self.root / "wal"}"
  query-log-enabled = false

[monitor]
  # No _internal database: nothing writes behind the tests' backs.
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false

[http]
  enabled = true
  bind-address = "{LOCALHOST}:{self.http_port}"
  auth-enabled = {"true" if self.auth else "false"}
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
  # max-body-size stays at its default (25 MB), far above our batches.

[logging]
  level = "warn"
  suppress-logo = true
"""

    def _command(self) -> list[str]:
        return [self.binary, "-config", str(self.config_path)]

    def _is_ready(self) -> bool:
        # /ping answers without credentials also when auth is on.
        try:
            return httpx.get(f"{self.url}/ping", timeout=1.0).status_code == 204
        except httpx.HTTPError:
            return False


class MosquittoServer(_ServerProcess):
    """``mosquitto`` (2.0) with persistence and queue limits sized for an ingest outage."""

    name = "mosquitto"

    # An ingest outage of hours at fleet rates must fit in the queue of its
    # persistent session: the default (1000 messages) would silently drop
    # the rest (DESIGN.md, "Delivery guarantees").
    max_queued_messages = 1_000_000
    # Bytes are bounded as well, not left unlimited: 1M SenML packs of ~1 KB
    # fit, and a runaway publisher cannot take all memory.
    max_queued_bytes = 2 * 1024**3

    def __init__(self, root: Path) -> None:
        self.binary = find_binary("mosquitto", "mosquitto")
        super().__init__(root)
        self.port = free_port()
        self.log_path = root / "mosquitto.log"
        self.persistence_dir = root / "persistence"
        self.persistence_dir.mkdir(exist_ok=True)
        self.config_path = root / "mosquitto.conf"
        self.config_path.write_text(self._config())

    @property
    def host(self) -> str:
        return LOCALHOST

    @property
    def url(self) -> str:
        return f"mqtt://{LOCALHOST}:{self.port}"

    def _config(self) -> str:
        # Run as root (CI containers), mosquitto 2.0 drops to user "mosquitto"
        # or "nobody", which could not write our temp dir: stay who we are.
        user = pwd.getpwuid(os.getuid()).pw_name
        return f"""\
# Written by tests/services.py; see mosquitto.conf(5) of mosquitto 2.0.
per_listener_settings false
listener {self.port} {LOCALHOST}
allow_anonymous true
user {user}

# Sessions and their queued messages survive a broker restart only with
# persistence. The database is saved at a clean exit and every second, so a
# crash (kill) loses at most one second of queued messages.
persistence true
persistence_location {self.persistence_dir}/
persistence_file mosquitto.db
autosave_interval 1
autosave_on_changes false

# The queue of an offline persistent session (ingest down or slow) must hold
# the outage we claim to survive; past the first limit reached, mosquitto drops
# QoS 1 messages silently.
max_queued_messages {self.max_queued_messages}
max_queued_bytes {self.max_queued_bytes}

# Unacknowledged QoS 1 messages sent to one client. Ingest acknowledges only
# after the batch holding a message is written, so the default of 20 would cap
# a batch at 20 messages for MQTT 3.1.1 clients. 0 (unlimited) would push a
# whole million-message backlog at a reconnecting consumer at once. 10000
# matches settings.ingest_max_inflight; MQTT 5 clients announce their own
# Receive Maximum, which mosquitto uses instead of this value.
max_inflight_messages 10000

# A persistent session whose client stays away this long is dropped with its
# queue; long enough for any outage we plan for. (MQTT 5 clients set their
# own session expiry interval.)
persistent_client_expiration 14d

log_dest file {self.log_path}
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
log_timestamp_format %Y-%m-%dT%H:%M:%S
"""

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection((LOCALHOST, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        """Broker log plus anything printed before logging started (config errors)."""
        return f"{_tail(self.output_path, lines)}\n--- {self.log_path.name} ---\n" + _tail(
            self.log_path, lines
        )


# -- PostgreSQL (the registry database) ------------------------------------------

POSTGRES_DEBIAN_PACKAGE = "postgresql"
POSTGRES_SUPERUSER = "postgres"  # the role initdb creates; the tests connect as it
POSTGRES_SYSTEM_USER = "postgres"  # Debian's system user, for running as root

# Runs as root, drops to the given uid/gid and execs the server: the server
# keeps this process's pid, so stop() and kill() signal the server itself.
_EXEC_AS_USER = (
    "import os, sys; os.setgroups([]); os.setgid(int(sys.argv[2])); "
    "os.setuid(int(sys.argv[1])); os.execv(sys.argv[3], sys.argv[3:])"
)


def find_postgres_bindir() -> Path:
    """The folder of ``initdb`` and ``postgres``: Debian's newest major version, else PATH."""

    def version(bindir: Path) -> tuple[int, ...]:
        name = bindir.parent.name
        return tuple(int(p) for p in name.split(".")) if name.replace(".", "").isdigit() else ()

    debian = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if debian:
        return max(debian, key=version)
    initdb = shutil.which("initdb")
    if initdb is not None and (Path(initdb).parent / "postgres").exists():
        return Path(initdb).parent
    raise ServiceNotInstalled(
        "PostgreSQL's initdb/postgres not found (looked in /usr/lib/postgresql/*/bin and PATH): "
        f"install the Debian package {POSTGRES_DEBIAN_PACKAGE!r} "
        f"(apt-get install {POSTGRES_DEBIAN_PACKAGE})"
    )


class PostgresServer(_ServerProcess):
    """``postgres`` on a fresh cluster: trust auth, TCP on 127.0.0.1 only, fsync off.

    PostgreSQL refuses to run as root; as root the cluster lives in a temp dir
    of its own owned by the ``postgres`` system user (pytest's temp dirs are
    root-only, so that user could not reach a cluster inside them), and
    ``cleanup()`` removes it. Otherwise the cluster lives in ``root/pg``.
    """

    name = "postgres"

    def __init__(self, root: Path) -> None:
        self.bindir = find_postgres_bindir()
        super().__init__(root)
        self.port = free_port()
        self._ids: tuple[int, int] | None = None
        self._own_home = False
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(POSTGRES_SYSTEM_USER)
            except KeyError:
                raise ServiceNotInstalled(
                    f"running as root, PostgreSQL needs the system user {POSTGRES_SYSTEM_USER!r} "
                    f"that the Debian package {POSTGRES_DEBIAN_PACKAGE!r} creates"
                ) from None
            self._ids = (account.pw_uid, account.pw_gid)
            self.home = Path(tempfile.mkdtemp(prefix="agrimatch-pg-"))
            self._own_home = True
            os.chown(self.home, *self._ids)
        else:
            self.home = root / "pg"
            self.home.mkdir(exist_ok=True)
        self.data_dir = self.home / "data"
        self._initdb()

    def _as_server_user(self, command: list[str]) -> list[str]:
        if self._ids is None:
            return command
        uid, gid = self._ids
        return [sys.executable, "-c", _EXEC_AS_USER, str(uid), str(gid), *command]

    def _initdb(self) -> None:
        command = [
            str(self.bindir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            POSTGRES_SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",  # a throwaway cluster: durability buys nothing
        ]
        with self.output_path.open("ab") as out:
            done = subprocess.run(
                self._as_server_user(command),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        if done.returncode != 0:
            raise ServiceFailed(f"initdb exited with code {done.returncode}:\n{self.log_tail()}")

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": LOCALHOST,
            "port": str(self.port),
            # Our own socket dir: Debian's /var/run/postgresql may not exist or be writable.
            "unix_socket_directories": str(self.home),
            # Speed over durability for a test cluster that dies with the session.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "log_min_messages": "warning",
        }
        command = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return self._as_server_user(command)

    def _connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=LOCALHOST,
            port=self.port,
            user=POSTGRES_SUPERUSER,
            dbname=database,
            connect_timeout=2,
            autocommit=True,
        )

    def _is_ready(self) -> bool:
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:  # refused, or "the database system is starting up"
            return False

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server (psycopg 3)."""
        return f"postgresql+psycopg://{POSTGRES_SUPERUSER}@{LOCALHOST}:{self.port}/{database}"

    def create_database(self, database: str) -> None:
        """Create an empty database (``database`` must be a plain identifier)."""
        with self._connect() as conn:
            conn.execute(f'CREATE DATABASE "{database}"')

    def drop_database(self, database: str) -> None:
        """Drop a database, disconnecting whoever is still on it."""
        with self._connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Fast shutdown (SIGINT): SIGTERM would wait for every client to disconnect."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def cleanup(self) -> None:
        """Stop the server and remove the cluster's temp dir (when it is not under ``root``)."""
        self.stop()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)
