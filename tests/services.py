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
import time
from pathlib import Path

import httpx

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
    """``influxd`` (1.x) with its own meta/data/wal dirs, no auth, HTTP on 127.0.0.1."""

    name = "influxd"

    def __init__(self, root: Path) -> None:
        self.binary = find_binary("influxd", "influxdb")
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
  auth-enabled = false
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
