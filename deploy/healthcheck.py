#!/usr/bin/env python3
"""Container healthchecks of the agrimatch image: exit 0 healthy, 1 not (reason on stderr).

Installed as ``agrimatch-healthcheck`` by the Dockerfile; docker-compose.yml
calls it. Standard library only for ``http`` and ``connected`` (a check must
not cost a second of imports every 30 s); ``scheduler`` uses SQLAlchemy.

  agrimatch-healthcheck http URL [--expect TEXT]
      The URL answers 2xx within the timeout (and its body holds TEXT). The API:
      ``/readyz`` (store, registry, broker); ingest: its metrics port with
      ``agrimatch_ingest_connected 1.0`` (connected to the broker; a dead
      writer ends the process, which the restart policy handles).
  agrimatch-healthcheck scheduler [--overdue-s 900]
      The registry answers and holds the scheduler's jobs, none overdue by more
      than ``--overdue-s``: APScheduler moves a job's next run time forward
      when it hands the job to a worker, so an overdue job is a scheduler that
      stopped scheduling. Reads AGRIMATCH_DATABASE_URL (else SQLite in
      AGRIMATCH_DATA_DIR, as agrimatch does).
  agrimatch-healthcheck connected --port 1883
      This container has an established TCP connection to that remote port
      (the simulator's connections to the broker), read from /proc/net/tcp*.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

JOBSTORE_TABLE = "apscheduler_jobs"  # forecasting.jobs.JOBSTORE_TABLE
_TCP_ESTABLISHED = "01"


def check_http(url: str, expect: str | None, timeout_s: float) -> str | None:
    """None when ``url`` answers 2xx (with ``expect`` in the body), else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read(1 << 20).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{url} unreachable: {exc}"
    if expect is not None and expect not in body:
        return f"{url} does not say {expect!r}"
    return None


def registry_url() -> str:
    """The registry URL as agrimatch resolves it: AGRIMATCH_DATABASE_URL or SQLite in the
    data dir; the driver agrimatch installs (psycopg 3) for PostgreSQL."""
    url = os.environ.get("AGRIMATCH_DATABASE_URL", "").strip()
    if not url:
        data_dir = Path(os.environ.get("AGRIMATCH_DATA_DIR", "data"))
        return f"sqlite:///{data_dir / 'registry.sqlite3'}"
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def check_scheduler(url: str, overdue_s: float) -> str | None:
    """None when the job store holds jobs and none is overdue by more than ``overdue_s``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url, pool_pre_ping=False)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}")
            ).fetchall()
    except SQLAlchemyError as exc:
        # The URL may hold a password: only the error's class goes out.
        return f"registry unreachable or no job store ({type(exc).__name__})"
    finally:
        engine.dispose()
    if not rows:
        return "the job store holds no job: the scheduler has not started"
    now = time.time()
    late = [
        str(job) for job, next_run in rows if next_run is not None and next_run < now - overdue_s
    ]
    if late:
        return f"jobs overdue by more than {overdue_s:.0f} s: {', '.join(sorted(late))}"
    return None


def established_ports(proc_net: Path = Path("/proc/net")) -> set[int]:
    """Remote ports of this network namespace's established TCP connections (v4 and v6)."""
    ports: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc_net / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 3 and parts[3] == _TCP_ESTABLISHED:
                ports.add(int(parts[2].rsplit(":", 1)[1], 16))
    return ports


def main(argv: list[str] | None = None) -> int:
    """Run one check; 0 healthy, 1 not."""
    parser = argparse.ArgumentParser(
        prog="agrimatch-healthcheck", description=__doc__.split("\n")[0]
    )
    checks = parser.add_subparsers(dest="check", required=True)
    http = checks.add_parser("http", help="a URL answers 2xx")
    http.add_argument("url")
    http.add_argument("--expect", help="text the body must hold")
    http.add_argument("--timeout", type=float, default=5.0)
    scheduler = checks.add_parser("scheduler", help="the scheduler's jobs are not overdue")
    scheduler.add_argument("--overdue-s", type=float, default=900.0)
    connected = checks.add_parser("connected", help="a TCP connection to a remote port is up")
    connected.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    if args.check == "http":
        problem = check_http(args.url, args.expect, args.timeout)
    elif args.check == "scheduler":
        problem = check_scheduler(registry_url(), args.overdue_s)
    else:
        up = args.port in established_ports()
        problem = None if up else f"no established connection to port {args.port}"
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
