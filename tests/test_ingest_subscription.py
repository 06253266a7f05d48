"""Ingest's subscription (plain for one replica, shared for N) and the simulator's
registration that lets the place check be on by default.

On a real Mosquitto (and a SQLite registry); the restart under load is in
tests/faults/test_ingest_under_load.py.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.cli.fleet_wiring import register_fleet
from agrimatch.cli.wiring import build_ingest
from agrimatch.contract.topics import DeviceAddress
from agrimatch.mqtt import MqttEndpoint
from agrimatch.registry import make_engine, migrate, session_factory
from agrimatch.registry.models import Device, Field
from agrimatch.settings import Settings, SettingsError, load_settings
from agrimatch.store.influx import InfluxStore
from firmware_sim import plan_fleet
from tests.loadgen import Publisher, assert_stored_exactly_once, make_messages, wait_until
from tests.services import MosquittoServer

# -- settings ----------------------------------------------------------------------------


def test_one_plain_replica_with_the_place_check_is_the_default() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.ingest_subscription == "plain"
    assert settings.ingest_check_place is True


def test_a_wrong_subscription_mode_names_the_variable_and_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGRIMATCH_INGEST_SUBSCRIPTION", "sharded")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "AGRIMATCH_INGEST_SUBSCRIPTION" in str(raised.value)
    assert "'plain'" in str(raised.value) and "'shared'" in str(raised.value)


# -- the simulator's registration ---------------------------------------------------------


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def test_the_fleet_is_registered_once_and_what_the_registry_holds_is_kept(
    sessions: sessionmaker[Session],
) -> None:
    specs = plan_fleet(12, seed=3)
    first = register_fleet(sessions, specs)
    assert first.devices == 12 and first.fields > 1 and first.farms > 1
    with sessions.begin() as session:
        places = {d.id: (d.farm_id, d.field_id) for d in session.scalars(select(Device))}
        crops = {f.crop for f in session.scalars(select(Field))}
    assert places == {s.device: (s.address.farm, s.address.field) for s in specs}
    assert crops <= {"garlic", "fragrant_pear", "jujube", "snow_lotus_fruit"}
    # Again, with one device now said to be elsewhere: nothing added, nothing moved.
    moved = dataclasses.replace(
        specs[0], address=DeviceAddress(specs[1].address.farm, "field-99", specs[0].device)
    )
    again = register_fleet(sessions, [moved, *specs[1:]])
    assert (again.devices, again.farms) == (0, 0) and again.fields == 1  # field-99 is new
    with sessions.begin() as session:
        device = session.get(Device, specs[0].device)
        assert device is not None
        assert (device.farm_id, device.field_id) == (specs[0].address.farm, specs[0].address.field)


# -- the subscription on a real broker -----------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.mark.services
def test_a_session_switched_between_modes_gets_each_message_once(
    broker: MosquittoServer, influx_store: InfluxStore
) -> None:
    endpoint = MqttEndpoint.from_url(broker.url)
    # Made-up device ids, no registry: the place check is not what this is about.
    base = {"ingest_linger_ms": 20, "ingest_check_place": False, "_env_file": None}
    shared = build_ingest(
        Settings(**base, ingest_subscription="shared"),  # type: ignore[arg-type]
        influx_store,
        endpoint=endpoint,
        client_id="ingest-switch",
    )
    shared.start()
    assert shared.connected.wait(20)
    assert wait_until(lambda: shared.metrics.snapshot().connects == 1, 10)
    time.sleep(0.5)  # its SUBACK
    shared.stop()  # the session keeps $share/ingest/... at the broker
    plain = build_ingest(
        Settings(**base),  # type: ignore[arg-type]
        influx_store,
        endpoint=endpoint,
        client_id="ingest-switch",
    )
    plain.start()
    try:
        assert plain.connected.wait(20)
        time.sleep(0.5)  # its SUBSCRIBE and the UNSUBSCRIBE of the shared one
        messages = make_messages(5, 4, time.time() - 3600)
        publisher = Publisher(endpoint)
        publisher.publish_all(messages)
        publisher.close()
        assert wait_until(lambda: plain.metrics.snapshot().messages_acked >= 20, 30)
        time.sleep(1.0)  # a second copy of any would arrive now
        assert plain.metrics.snapshot().messages_received == len(messages)
        assert_stored_exactly_once(influx_store, messages)
    finally:
        plain.stop()
