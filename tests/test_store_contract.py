"""The TelemetryStore contract: every adapter passes the same tests.

Each test runs against a real influxd (a fresh database) and against the
embedded SQLite store (a fresh file).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agrimatch.settings import Settings
from agrimatch.store import Aggregation, Point, TelemetryStore
from agrimatch.store.embedded import EmbeddedStore
from agrimatch.store.factory import open_store
from agrimatch.store.influx import InfluxStore

T0 = 1_700_000_400_000  # a whole minute, so 60 s buckets start on it
MINUTE = 60_000
M = "telemetry"


@pytest.fixture(params=["influx", "embedded"])
def store(request: pytest.FixtureRequest) -> TelemetryStore:
    return request.getfixturevalue(f"{request.param}_store")


def tele(time_ms: int, farm: str = "f1", device: str = "d1", **fields) -> Point:
    return Point(M, {"farm": farm, "device": device}, fields, time_ms)


def count_of(store: TelemetryStore, field: str) -> float | None:
    rows = store.aggregate(M, [field], Aggregation.COUNT, T0 - MINUTE, T0 + 60 * MINUTE)
    return rows[0].values[field] if rows else 0


# -- writing and reading back ------------------------------------------------


def test_written_points_read_back_with_their_tags_and_typed_fields(store):
    points = [
        tele(T0, soil_moisture=21.0, battery_mv=3612, irrigating=True, stage="flowering"),
        tele(T0 + 1_000, device="d2", soil_moisture=19.25, battery_mv=-5, irrigating=False),
    ]
    result = store.write(points)
    assert (result.written, result.rejected) == (2, [])

    back = store.query_points(M, T0, T0 + MINUTE)
    assert back == points
    fields = back[0].fields
    assert type(fields["soil_moisture"]) is float  # 21.0 stays a float
    assert type(fields["battery_mv"]) is int
    assert type(fields["irrigating"]) is bool
    assert type(fields["stage"]) is str


def test_writing_the_same_point_twice_stores_it_once(store):
    point = tele(T0, air_temp=18.5)
    store.write([point])
    store.write([point])

    assert store.query_points(M, T0, T0 + MINUTE) == [point]
    assert count_of(store, "air_temp") == 1


def test_rewriting_a_point_overwrites_the_fields_it_carries_and_keeps_the_others(store):
    store.write([tele(T0, air_temp=18.5, humidity=60.0)])
    store.write([tele(T0, air_temp=19.0, rain_mm=0.2)])

    assert store.query_points(M, T0, T0 + MINUTE) == [
        tele(T0, air_temp=19.0, humidity=60.0, rain_mm=0.2)
    ]


def test_points_differing_only_in_a_tag_are_different_points(store):
    store.write([tele(T0, device="d1", air_temp=1.0), tele(T0, device="d2", air_temp=2.0)])

    assert count_of(store, "air_temp") == 2


def test_a_query_includes_its_start_and_excludes_its_end(store):
    store.write(
        [tele(T0 - 1, x=0.0), tele(T0, x=1.0), tele(T0 + 999, x=2.0), tele(T0 + 1000, x=3.0)]
    )

    back = store.query_points(M, T0, T0 + 1000)
    assert [p.fields["x"] for p in back] == [1.0, 2.0]


def test_points_come_back_oldest_first(store):
    store.write([tele(T0 + 2, x=2.0), tele(T0, device="d2", x=0.0), tele(T0 + 1, x=1.0)])

    assert [p.time_ms for p in store.query_points(M, T0, T0 + MINUTE)] == [T0, T0 + 1, T0 + 2]


def test_a_tag_filter_returns_only_matching_series(store):
    store.write(
        [
            tele(T0, farm="f1", device="d1", x=1.0),
            tele(T0, farm="f1", device="d2", x=2.0),
            tele(T0, farm="f2", device="d1", x=3.0),
        ]
    )

    back = store.query_points(M, T0, T0 + MINUTE, tags={"farm": "f1", "device": "d2"})
    assert back == [tele(T0, farm="f1", device="d2", x=2.0)]


def test_queries_on_nothing_return_nothing(store):
    assert store.query_points("no_such_measurement", T0, T0 + MINUTE) == []
    assert store.aggregate("no_such_measurement", ["x"], Aggregation.MEAN, T0, T0 + MINUTE) == []
    store.write([tele(T0, x=1.0)])
    assert store.query_points(M, T0 + MINUTE, T0 + 2 * MINUTE) == []
    assert store.query_points(M, T0, T0 + MINUTE, tags={"farm": "nowhere"}) == []


# -- rejections ----------------------------------------------------------------


def test_a_field_type_conflict_rejects_exactly_that_point_and_stores_the_others(store):
    store.write([tele(T0, air_temp=18.0)])  # air_temp is a float from now on
    batch = [tele(T0 + i * 1000, air_temp=20.0 + i) for i in range(1, 10)]
    bad = tele(T0 + 4500, air_temp="warm")
    batch.insert(4, bad)

    result = store.write(batch)

    assert [r.point for r in result.rejected] == [bad]
    assert "conflict" in result.rejected[0].reason
    assert "air_temp" in result.rejected[0].reason
    assert result.written == 9
    assert count_of(store, "air_temp") == 10


@pytest.mark.parametrize(
    "fields",
    [{}, {"x": float("nan")}, {"x": float("inf")}, {"x": None}, {"x": [1, 2]}],
    ids=["no-fields", "nan", "inf", "none", "list"],
)
def test_a_point_no_store_can_hold_is_rejected_with_a_reason(store, fields):
    good = tele(T0, x=1.0)
    bad = Point(M, {"farm": "f1"}, fields, T0 + 1)

    result = store.write([good, bad])

    assert [r.point for r in result.rejected] == [bad]
    assert result.rejected[0].reason
    assert store.query_points(M, T0, T0 + MINUTE) == [good]


# -- aggregates ------------------------------------------------------------------

BUCKETED = [
    (Aggregation.MEAN, [1.5, 6.0]),
    (Aggregation.MIN, [1.0, 4.0]),
    (Aggregation.MAX, [2.0, 8.0]),
    (Aggregation.SUM, [3.0, 12.0]),
    (Aggregation.COUNT, [2.0, 2.0]),
    (Aggregation.LAST, [2.0, 8.0]),
]


def _two_minutes(store: TelemetryStore) -> None:
    # Written out of order, so LAST must go by time, not by arrival.
    store.write(
        [
            tele(T0 + MINUTE + 10_000, x=8.0, y=80.0),
            tele(T0 + 10_000, x=2.0, y=20.0),
            tele(T0, x=1.0, y=10.0),
            tele(T0 + MINUTE, x=4.0, y=40.0),
        ]
    )


@pytest.mark.parametrize(("fn", "expected"), BUCKETED, ids=[fn.value for fn, _ in BUCKETED])
def test_aggregates_per_time_bucket(store, fn, expected):
    _two_minutes(store)

    rows = store.aggregate(M, ["x", "y"], fn, T0, T0 + 2 * MINUTE, every_ms=MINUTE)

    assert [r.bucket_ms for r in rows] == [T0, T0 + MINUTE]
    assert [r.values["x"] for r in rows] == expected
    y_scale = 1.0 if fn is Aggregation.COUNT else 10.0
    assert [r.values["y"] for r in rows] == [v * y_scale for v in expected]
    assert all(r.group == {} for r in rows)


def test_empty_buckets_are_omitted(store):
    store.write([tele(T0, x=1.0), tele(T0 + 3 * MINUTE, x=2.0)])

    rows = store.aggregate(M, ["x"], Aggregation.SUM, T0, T0 + 4 * MINUTE, every_ms=MINUTE)

    assert [(r.bucket_ms, r.values["x"]) for r in rows] == [(T0, 1.0), (T0 + 3 * MINUTE, 2.0)]


def test_buckets_are_aligned_to_the_epoch_not_to_the_query_start(store):
    store.write([tele(T0 + 30_000, x=1.0), tele(T0 + 70_000, x=2.0)])

    rows = store.aggregate(M, ["x"], Aggregation.SUM, T0 + 20_000, T0 + 2 * MINUTE, every_ms=MINUTE)

    assert [r.bucket_ms for r in rows] == [T0, T0 + MINUTE]


def test_an_offset_moves_every_bucket_boundary_by_it(store):
    store.write([tele(T0 + 10_000, x=1.0), tele(T0 + 30_000, x=2.0), tele(T0 + 70_000, x=4.0)])

    for offset in (20_000, 20_000 - MINUTE, 20_000 + 7 * MINUTE):  # the same boundaries
        rows = store.aggregate(
            M, ["x"], Aggregation.SUM, T0 - MINUTE, T0 + 2 * MINUTE, MINUTE, offset_ms=offset
        )
        assert [(r.bucket_ms, r.values["x"]) for r in rows] == [
            (T0 - 40_000, 1.0),
            (T0 + 20_000, 6.0),
        ]


def test_without_buckets_the_whole_range_is_one_row_keyed_by_its_start(store):
    _two_minutes(store)

    for fn in (Aggregation.MEAN, Aggregation.LAST):
        rows = store.aggregate(M, ["x"], fn, T0 - 5, T0 + 2 * MINUTE)
        assert [r.bucket_ms for r in rows] == [T0 - 5]
    (row,) = store.aggregate(M, ["x"], Aggregation.MEAN, T0 - 5, T0 + 2 * MINUTE)
    assert row.values == {"x": 3.75}


def test_aggregates_grouped_by_tag_come_ordered_by_group_then_bucket(store):
    store.write(
        [
            tele(T0, farm="f2", device="d1", x=10.0),
            tele(T0, farm="f1", device="d1", x=1.0),
            tele(T0, farm="f1", device="d2", x=3.0),
            tele(T0 + MINUTE, farm="f1", device="d1", x=5.0),
        ]
    )

    rows = store.aggregate(
        M, ["x"], Aggregation.MEAN, T0, T0 + 2 * MINUTE, every_ms=MINUTE, group_by=["farm"]
    )

    assert [(r.group, r.bucket_ms, r.values["x"]) for r in rows] == [
        ({"farm": "f1"}, T0, 2.0),
        ({"farm": "f1"}, T0 + MINUTE, 5.0),
        ({"farm": "f2"}, T0, 10.0),
    ]


def test_aggregates_honour_the_tag_filter(store):
    store.write([tele(T0, farm="f1", x=1.0), tele(T0, farm="f2", x=10.0)])

    (row,) = store.aggregate(M, ["x"], Aggregation.SUM, T0, T0 + MINUTE, tags={"farm": "f2"})

    assert row.values == {"x": 10.0}


# -- names that need escaping ---------------------------------------------------------


def test_names_with_quotes_and_backslashes_round_trip_and_filter(store):
    measurement = "m\"e'as\\ure"
    tags = {'fa"rm': 'o\'brien "the" farm\\north', "plain": "yes"}
    point = Point(measurement, tags, {"t\"e'mp": 1.5}, T0)

    assert store.write([point]).rejected == []

    assert store.query_points(measurement, T0, T0 + MINUTE, tags=tags) == [point]
    (row,) = store.aggregate(
        measurement, ["t\"e'mp"], Aggregation.MAX, T0, T0 + MINUTE, group_by=['fa"rm'], tags=tags
    )
    assert row.group == {'fa"rm': tags['fa"rm']}
    assert row.values == {"t\"e'mp": 1.5}


# -- choosing the adapter ---------------------------------------------------------------


def test_without_an_influx_url_the_store_is_an_embedded_file_in_the_data_dir(tmp_path: Path):
    data_dir = tmp_path / "not" / "yet"
    store = open_store(Settings(data_dir=data_dir, influx_url=None))
    try:
        assert isinstance(store, EmbeddedStore)
        assert store.path == data_dir / "telemetry.sqlite3"
        assert store.path.exists()
    finally:
        store.close()


def test_with_an_influx_url_the_store_is_influxdb():
    store = open_store(Settings(influx_url="http://127.0.0.1:9/", influx_db="farmdb"))
    try:
        assert isinstance(store, InfluxStore)
        assert (store.url, store.database) == ("http://127.0.0.1:9", "farmdb")
    finally:
        store.close()
