"""What only the embedded SQLite store has to get right: processes, threads, durability."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agrimatch.store import Aggregation, Point, StoreUnavailable
from agrimatch.store.embedded import EmbeddedStore

T0 = 1_700_000_400_000
M = "telemetry"

READER = """
import json, sys
from agrimatch.store.embedded import EmbeddedStore
store = EmbeddedStore(sys.argv[1], busy_timeout_s=2.0)
print(json.dumps([p.fields["x"] for p in store.query_points("telemetry", 0, 2**42)]))
"""

CRASHING_WRITER = """
import os, signal, sys
from agrimatch.store import Point
from agrimatch.store.embedded import EmbeddedStore
store = EmbeddedStore(sys.argv[1])
store.write([Point("telemetry", {"device": "d1"}, {"x": 7.0}, 1_700_000_400_000)])
os.kill(os.getpid(), signal.SIGKILL)  # no close, no exit handlers
"""


def tele(time_ms: int, x: float, device: str = "d1") -> Point:
    return Point(M, {"device": device}, {"x": x}, time_ms)


def run_python(script: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )


@contextmanager
def writer_mid_transaction(path: Path) -> Iterator[None]:
    """Another connection holding the database's write lock, as a writer mid-batch does."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_another_process_reads_while_a_writer_holds_the_write_lock(embedded_store):
    embedded_store.write([tele(T0, 1.0), tele(T0 + 1, 2.0)])

    # In WAL mode even an EXCLUSIVE writer leaves readers alone; with a rollback
    # journal the reader would wait out its busy timeout and fail.
    with writer_mid_transaction(embedded_store.path):
        reader = run_python(READER, embedded_store.path)

    assert reader.returncode == 0, reader.stderr
    assert json.loads(reader.stdout) == [1.0, 2.0]
    assert embedded_store.write([tele(T0 + 2, 3.0)]).written == 1  # still the writer


def test_a_write_is_on_disk_when_it_returns_even_if_the_process_dies_right_after(tmp_path):
    path = tmp_path / "telemetry.sqlite3"

    writer = run_python(CRASHING_WRITER, path)

    assert writer.returncode == -9, writer.stderr
    with EmbeddedStore(path) as store:
        assert [p.fields for p in store.query_points(M, 0, 2**42)] == [{"x": 7.0}]


def test_a_batch_that_cannot_get_the_write_lock_is_unavailable_and_stores_nothing(tmp_path):
    with EmbeddedStore(tmp_path / "t.sqlite3", busy_timeout_s=0.2) as store:
        with writer_mid_transaction(store.path), pytest.raises(StoreUnavailable):
            store.write([tele(T0, 1.0), tele(T0 + 1, 2.0)])

        assert store.query_points(M, 0, 2**42) == []


def test_one_writer_thread_and_reader_threads_share_a_store(embedded_store):
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for batch in range(40):
                embedded_store.write([tele(T0 + batch * 10 + i, float(i)) for i in range(10)])
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                embedded_store.aggregate(M, ["x"], Aggregation.COUNT, 0, 2**42, every_ms=100)
                embedded_store.query_points(M, T0, T0 + 50)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    (row,) = embedded_store.aggregate(M, ["x"], Aggregation.COUNT, 0, 2**42)
    assert row.values == {"x": 400.0}
