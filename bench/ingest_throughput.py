"""Ingest throughput against real Mosquitto and InfluxDB, measured side by side.

Queues M SenML messages (default 200,000 from 1,000 devices) in a real
Mosquitto for waiting persistent sessions, then measures in one run:

  (a) the broker's drain rate to a C client (``mosquitto_sub -q 1``),
  (b) InfluxDB's write rate for the same points as batched line protocol,
  (c) ``agrimatch ingest`` end to end with 1 and 2 processes on the shared
      subscription, verifying zero loss,

and prints msg/s for each, the ratio c / min(a, b) and ingest's peak RSS.
Everything binds 127.0.0.1 and stops by itself.

    .venv/bin/python bench/ingest_throughput.py [--messages 200000] [--devices 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import psutil
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agrimatch.contract.telemetry import decode_telemetry  # noqa: E402
from agrimatch.contract.topics import TELEMETRY_SUBSCRIPTION  # noqa: E402
from agrimatch.mqtt import MqttEndpoint, make_paho_client  # noqa: E402
from agrimatch.store.measurements import readings_to_points  # noqa: E402
from tests.loadgen import Publisher, make_messages  # noqa: E402
from tests.services import InfluxServer, MosquittoServer, find_binary  # noqa: E402


def queue_messages(endpoint: MqttEndpoint, messages) -> float:
    publisher = Publisher(endpoint)
    started = time.perf_counter()
    chunk = 5000
    for i in range(0, len(messages), chunk):
        publisher.publish_all(messages[i : i + chunk])
    publisher.close()
    return time.perf_counter() - started


def create_session_c(broker: MosquittoServer, client_id: str, topic: str) -> None:
    subprocess.run(
        [
            find_binary("mosquitto_sub", "mosquitto-clients"),
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-i",
            client_id,
            "-c",
            "-q",
            "1",
            "-t",
            topic,
            "-E",
        ],
        check=True,
        timeout=30,
    )


def drain_c(broker: MosquittoServer, client_id: str, topic: str, count: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            find_binary("mosquitto_sub", "mosquitto-clients"),
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-i",
            client_id,
            "-c",
            "-q",
            "1",
            "-t",
            topic,
            "-C",
            str(count),
        ],
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def discard_session(endpoint: MqttEndpoint, client_id: str) -> None:
    """End a persistent session, so it takes no share of later runs' messages."""
    client = make_paho_client(endpoint, client_id, clean_start=True)
    client.connect(endpoint.host, endpoint.port, clean_start=True)
    client.loop_start()
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()


def influx_write_rate(influx: InfluxServer, messages, batch: int) -> float:
    """Points/s for pre-built gzip line-protocol batches posted to /write."""
    db = "bench_raw"
    httpx.post(f"{influx.url}/query", params={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
    now = time.time()
    lines = []
    for m in messages:
        address = m.address
        decoded = decode_telemetry(m.payload, address.device, now)
        for p in readings_to_points(address, decoded.readings):
            tags = ",".join(f"{k}={v}" for k, v in sorted(p.tags.items()))
            fields = ",".join(f"{k}={v!r}" for k, v in p.fields.items())
            lines.append(f"{p.measurement},{tags} {fields} {p.time_ms}")
    bodies = [
        gzip.compress("\n".join(lines[i : i + batch]).encode(), 1)
        for i in range(0, len(lines), batch)
    ]
    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        for body in bodies:
            r = client.post(
                f"{influx.url}/write",
                params={"db": db, "precision": "ms"},
                content=body,
                headers={"Content-Encoding": "gzip"},
            )
            r.raise_for_status()
        elapsed = time.perf_counter() - started
    return len(lines) / elapsed


def paho_drain_rate(broker: MosquittoServer, messages) -> float:
    """msg/s of a bare paho MQTT 5 consumer that only acknowledges: Python's MQTT ceiling."""
    endpoint = MqttEndpoint.from_url(broker.url)
    client_id = "bench-paho-bare"
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    properties.ReceiveMaximum = 10_000
    received = [0]
    done = threading.Event()

    def on_message(client, userdata, message) -> None:
        client.ack(message.mid, message.qos)
        received[0] += 1
        if received[0] >= len(messages):
            done.set()

    def connect() -> paho.Client:
        client = make_paho_client(endpoint, client_id, clean_start=False, manual_ack=True)
        client.on_connect = lambda c, u, f, r, p: c.subscribe(
            TELEMETRY_SUBSCRIPTION, options=SubscribeOptions(qos=1)
        )
        client.connect(endpoint.host, endpoint.port, clean_start=False, properties=properties)
        return client

    client = connect()
    client.loop_start()
    time.sleep(1.0)
    client.disconnect()
    client.loop_stop()
    queue_messages(endpoint, messages)
    client = connect()
    client.on_message = on_message
    started = time.perf_counter()
    client.loop_start()
    done.wait(300)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    discard_session(endpoint, client_id)
    return received[0] / elapsed


def ingest_env(broker: MosquittoServer, influx: InfluxServer, db: str, client_id: str) -> dict:
    return os.environ | {
        "AGRIMATCH_MQTT_URL": broker.url,
        "AGRIMATCH_INFLUX_URL": influx.url,
        "AGRIMATCH_INFLUX_DB": db,
        "AGRIMATCH_MQTT_CLIENT_ID": client_id,
        "AGRIMATCH_INGEST_STATS_INTERVAL_S": "3600",
        "AGRIMATCH_INGEST_MAX_AGE_DAYS": "3650",
        "AGRIMATCH_INGEST_CHECK_PLACE": "false",  # made-up device ids, no registry
        "AGRIMATCH_INGEST_SUBSCRIPTION": "shared",  # 1 and 2 processes split the backlog
    }


def start_ingest(env: dict) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agrimatch", "ingest"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_connected(broker: MosquittoServer, client_id: str, timeout_s: float = 60.0) -> None:
    """Until the broker's log shows ``client_id`` connected (its session then exists)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if f" as {client_id} (" in broker.log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{client_id} did not connect within {timeout_s:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def count_points(influx: InfluxServer, db: str) -> int:
    r = httpx.get(
        f"{influx.url}/query",
        params={"db": db, "q": "SELECT count(air_temp) FROM telemetry"},
        timeout=60,
    )
    series = r.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def ingest_rate(broker, influx, messages, replicas: int) -> tuple[float, int, int]:
    """``replicas`` ingest processes drain a queued backlog: (msg/s, stored, peak RSS)."""
    db = f"bench_ingest_{replicas}"
    ids = [f"bench-ingest-{replicas}-{i}" for i in range(replicas)]
    # Create the persistent sessions in the share group, then leave.
    for client_id in ids:
        p = start_ingest(ingest_env(broker, influx, db, client_id))
        wait_connected(broker, client_id)
        time.sleep(1.0)  # it subscribes right after connecting
        stop(p)
    queue_messages(MqttEndpoint.from_url(broker.url), messages)
    processes = [start_ingest(ingest_env(broker, influx, db, cid)) for cid in ids]
    started = time.perf_counter()
    peak_rss = 0
    stored = 0
    deadline = started + 300
    while time.perf_counter() < deadline:
        for p in processes:
            with contextlib.suppress(psutil.Error):
                peak_rss = max(peak_rss, psutil.Process(p.pid).memory_info().rss)
        stored = count_points(influx, db)
        if stored >= len(messages):
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    for p in processes:
        stop(p)
    for client_id in ids:
        discard_session(MqttEndpoint.from_url(broker.url), client_id)
    return stored / elapsed, stored, peak_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=5000, help="line-protocol batch for (b)")
    args = parser.parse_args()
    per_device = max(1, args.messages // args.devices)
    messages = make_messages(args.devices, per_device, time.time() - per_device * 60 - 3600)
    n = len(messages)
    print(
        f"{n:,} messages from {args.devices:,} devices; "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoServer(Path(tmp) / "mosquitto")
        influx = InfluxServer(Path(tmp) / "influx")
        broker.start()
        influx.start()
        try:
            endpoint = MqttEndpoint.from_url(broker.url)
            create_session_c(broker, "bench-c-drain", TELEMETRY_SUBSCRIPTION)
            publish_s = queue_messages(endpoint, messages)
            print(f"queued with paho QoS 1: {n / publish_s:,.0f} msg/s")
            a = n / drain_c(broker, "bench-c-drain", TELEMETRY_SUBSCRIPTION, n)
            discard_session(endpoint, "bench-c-drain")
            print(f"(a) broker drain to mosquitto_sub -q 1: {a:,.0f} msg/s")
            b = influx_write_rate(influx, messages, args.batch)
            print(f"(b) InfluxDB batched line protocol:    {b:,.0f} points/s (1 point per message)")
            paho_rate = paho_drain_rate(broker, messages)
            print(f"(p) bare paho MQTT 5 consumer, ack only: {paho_rate:,.0f} msg/s")
            results = {}
            for replicas in (1, 2):
                rate, stored, rss = ingest_rate(broker, influx, messages, replicas)
                results[replicas] = rate
                loss = n - stored
                print(
                    f"(c) agrimatch ingest, {replicas} process(es): {rate:,.0f} msg/s, "
                    f"stored {stored:,}/{n:,} (loss {loss}), peak RSS {rss / 2**20:,.0f} MiB "
                    f"per process (max)"
                )
            base = min(a, b)
            for replicas, rate in results.items():
                print(f"ratio c{replicas} / min(a, b) = {rate / base:.2f}")
            print(f"ratio p / min(a, b) = {paho_rate / base:.2f} (the Python MQTT ceiling)")
        finally:
            broker.stop()
            influx.stop()


if __name__ == "__main__":
    main()
