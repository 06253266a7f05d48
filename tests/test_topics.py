"""Topic names are part of the contract."""

import pytest

from agrimatch.contract.topics import (
    INGEST_SHARED_SUBSCRIPTION,
    DeviceAddress,
    TopicError,
    TopicKind,
    dead_letter_topic,
    parse_topic,
)


def test_topics_are_built_from_the_device_address():
    address = DeviceAddress("farm-1", "north_field", "dev-0001")
    assert address.telemetry_topic == "agrimatch/v1/farm-1/north_field/dev-0001/telemetry"
    assert address.status_topic.endswith("/status")
    assert address.config_topic.endswith("/config")


def test_parse_topic_inverts_the_builder():
    address = DeviceAddress("f1", "x2", "d3")
    for kind in TopicKind:
        assert parse_topic(address.topic(kind)) == (address, kind)


@pytest.mark.parametrize(
    "topic",
    [
        "agrimatch/v1/f/x/d",
        "agrimatch/v2/f/x/d/telemetry",
        "agrimatch/v1/F/x/d/telemetry",
        "agrimatch/v1/f/x/d/other",
        "agrimatch/v1/f/-x/d/telemetry",
        "agrimatch/v1/f/x/" + "d" * 65 + "/telemetry",
        "agrimatch/v1/f//d/telemetry",
    ],
)
def test_parse_topic_rejects_what_is_not_ours(topic):
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_ids_follow_the_contract_pattern():
    with pytest.raises(TopicError):
        DeviceAddress("Farm", "x", "d")
    DeviceAddress("0", "a" * 64, "z_-9")


def test_ingest_uses_a_shared_subscription_and_dead_letters_have_their_own_tree():
    assert INGEST_SHARED_SUBSCRIPTION == "$share/ingest/agrimatch/v1/+/+/+/telemetry"
    assert dead_letter_topic("not_json") == "agrimatch/v1/_dead/not_json"
