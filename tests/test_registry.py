"""The registry database, on SQLite and on a real PostgreSQL: schema, upserts, truth, queries."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy import Engine, event, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.registry import (
    Base,
    Campaign,
    Device,
    Farm,
    Field,
    RegistryError,
    SeasonTruth,
    current_revision,
    database_url,
    device_ids,
    find_fields,
    get_device,
    head_revision,
    list_campaigns,
    list_devices,
    list_seasons,
    make_engine,
    migrate,
    record_campaign_outcome,
    record_campaigns,
    record_season_truth,
    seasons_with_truth,
    session_factory,
    upsert_scenario,
)
from agrimatch.scenario import CampaignPlan, Scenario, parse_scenario
from agrimatch.settings import Settings

SCENARIO = """
name = "registry-test"
seed = 7
first_season = 2023
seasons = 2

[[regions]]
id = "zhongmou"
name = "Zhongmou, Henan"
lat = 34.72
lon = 113.98

[[regions]]
id = "korla"
name = "Korla, Xinjiang"
lat = 41.76
lon = 86.15

[[farms]]
id = "garlic-coop-1"
region = "zhongmou"
lat = 34.7
lon = 113.9
fields = [
  { id = "north", crop = "garlic", area_ha = 2.5, planting = "10-01", devices = 2, camera = true },
  { id = "south", crop = "maize", area_ha = 1.5, planting = "02-29", soil = "sandy_loam" },
]

[[farms]]
id = "pear-orchard"
region = "korla"
lat = 41.7
lon = 86.1
fields = [{ id = "f01", crop = "fragrant_pear", area_ha = 10.0, planting = "03-20" }]

[[farm_groups]]
region = "zhongmou"
count = 3
id_prefix = "zm"
fields_per_farm = 2
crops = { garlic = 0.7, potato = 0.3 }
planting = { garlic = "10-01", potato = "03-01" }
camera_share = 0.5

[[platforms]]
id = "pdd"
name = "Pinduoduo"
campaign_lead_days = 14

[[platforms]]
id = "douyin"
name = "Douyin"

[[campaigns]]
platform = "pdd"
crop = "garlic"
region = "zhongmou"
start = 2023-06-01
end = 2023-06-10
uplift = 8.0

[[campaigns]]
platform = "douyin"
crop = "fragrant_pear"
region = "korla"
start = 2023-09-01
end = 2023-10-20
uplift = 3.0
hangover = 0.2
"""

TRUTH = SeasonTruth(
    yield_t_ha=22.5,
    quantity_t=56.25,
    harvest_start=date(2024, 5, 10),
    harvest_peak=date(2024, 5, 20),
    harvest_end=date(2024, 6, 5),
    water_stress=0.25,
    heat_stress=0.0,
)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return parse_scenario(SCENARIO, "registry-test")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    # Looked up only here, so a SQLite-only selection starts no PostgreSQL.
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(registry_url: str) -> Iterator[Engine]:
    engine = make_engine(registry_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    migrate(engine)
    return session_factory(engine)


@pytest.fixture
def loaded(sessions: sessionmaker[Session], scenario: Scenario) -> sessionmaker[Session]:
    with sessions.begin() as session:
        upsert_scenario(session, scenario)
    return sessions


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every registry table, in primary-key order."""
    rows = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(r) for r in conn.execute(query)]
    return rows


def rejected(sessions: sessionmaker[Session], *rows: object) -> bool:
    """True if the database refuses to store ``rows`` (an IntegrityError at flush)."""
    with sessions() as session:
        session.add_all(rows)
        try:
            session.flush()
        except IntegrityError:
            return True
        finally:
            session.rollback()
    return False


# -- schema ------------------------------------------------------------------------


def test_migrate_builds_the_schema_from_an_empty_database(engine: Engine) -> None:
    assert current_revision(engine) is None
    migrate(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"} == tables


def test_the_migrations_match_the_models(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrate_on_a_migrated_database_changes_nothing(
    engine: Engine, loaded: sessionmaker[Session]
) -> None:
    before = snapshot(engine)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    migrate(engine)
    ddl = [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
    assert ddl == []
    assert current_revision(engine) == head_revision()
    assert snapshot(engine) == before


def test_concurrent_migrations_run_one_after_the_other(engine: Engine) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        for result in [pool.submit(migrate, engine) for _ in range(4)]:
            result.result(timeout=60)
    assert current_revision(engine) == head_revision()


# -- scenario upsert ---------------------------------------------------------------


def test_upserting_a_scenario_twice_leaves_the_same_rows(
    engine: Engine, sessions: sessionmaker[Session], scenario: Scenario
) -> None:
    with sessions.begin() as session:
        first = upsert_scenario(session, scenario)
    once = snapshot(engine)
    with sessions.begin() as session:
        second = upsert_scenario(session, scenario)
    assert second == first
    assert snapshot(engine) == once
    farms = scenario.all_farms()
    assert len(once["farms"]) == len(farms) == 5
    assert len(once["fields"]) == sum(len(f.fields) for f in farms)
    assert len(once["seasons"]) == 2 * len(once["fields"])
    assert (first.regions, first.platforms) == (2, 2)


def test_a_changed_scenario_updates_its_rows_in_place(
    loaded: sessionmaker[Session], scenario: Scenario
) -> None:
    with loaded() as session:
        before = find_fields(session, farm_id="pear-orchard")[0]
    changed = parse_scenario(SCENARIO.replace("area_ha = 10.0", "area_ha = 12.0"), "changed")
    with loaded.begin() as session:
        upsert_scenario(session, changed)
    with loaded() as session:
        [after] = find_fields(session, farm_id="pear-orchard")
        seasons = list_seasons(session, crop="fragrant_pear")
    assert (after.pk, after.area_ha) == (before.pk, 12.0)
    assert [s.area_ha for s in seasons] == [12.0, 12.0]


def test_a_scenario_gets_sensors_and_cameras_with_topic_ids(loaded: sessionmaker[Session]) -> None:
    with loaded() as session:
        devices = list_devices(session, farm_id="garlic-coop-1", field_id="north")
        assert [(d.id, d.kind) for d in devices] == [
            ("garlic-coop-1-north-cam", "camera"),
            ("garlic-coop-1-north-d1", "sensor"),
            ("garlic-coop-1-north-d2", "sensor"),
        ]
        device = get_device(session, "garlic-coop-1-south-d1")
        assert device is not None
        assert (device.field.crop, device.field.farm.region_id) == ("maize", "zhongmou")


def test_seasons_are_planned_from_the_planting_date_of_each_year(
    loaded: sessionmaker[Session],
) -> None:
    with loaded() as session:
        seasons = list_seasons(session, crop="maize")
    # 02-29 exists only in 2024; other years plant on 02-28.
    assert [s.planted_on for s in seasons] == [date(2023, 2, 28), date(2024, 2, 29)]
    assert all(not s.has_truth for s in seasons)


# -- truth -------------------------------------------------------------------------


def test_season_truth_round_trips(loaded: sessionmaker[Session]) -> None:
    with loaded.begin() as session:
        record_season_truth(session, "garlic-coop-1", "north", 2024, TRUTH)
    with loaded() as session:
        [season] = list_seasons(session, year=2024, has_truth=True)
        got = SeasonTruth(
            season.yield_t_ha or 0.0,
            season.quantity_t or 0.0,
            season.harvest_start or date.min,
            season.harvest_peak or date.min,
            season.harvest_end or date.min,
            season.water_stress,
            season.heat_stress,
        )
    assert got == TRUTH
    assert (season.farm_id, season.field_id, season.crop) == ("garlic-coop-1", "north", "garlic")


def test_recorded_truth_keeps_its_season_plan_when_the_scenario_changes(
    loaded: sessionmaker[Session],
) -> None:
    with loaded.begin() as session:
        record_season_truth(session, "pear-orchard", "f01", 2023, TRUTH)
    changed = parse_scenario(SCENARIO.replace("area_ha = 10.0", "area_ha = 12.0"), "changed")
    with loaded.begin() as session:
        upsert_scenario(session, changed)
    with loaded() as session:
        seasons = list_seasons(session, crop="fragrant_pear")
    assert [(s.year, s.area_ha, s.yield_t_ha) for s in seasons] == [
        (2023, 10.0, TRUTH.yield_t_ha),
        (2024, 12.0, None),
    ]


def test_truth_for_an_unplanned_year_creates_the_season(loaded: sessionmaker[Session]) -> None:
    with loaded.begin() as session:
        season = record_season_truth(session, "pear-orchard", "f01", 2030, TRUTH)
    assert (season.crop, season.planted_on, season.area_ha) == (
        "fragrant_pear",
        date(2030, 3, 20),
        10.0,
    )


def test_truth_for_an_unknown_field_is_an_error(loaded: sessionmaker[Session]) -> None:
    with loaded() as session, pytest.raises(RegistryError, match="no field 'west'"):
        record_season_truth(session, "garlic-coop-1", "west", 2024, TRUTH)


def test_partial_truth_is_rejected(loaded: sessionmaker[Session]) -> None:
    with loaded() as session:
        season = list_seasons(session, year=2024)[0]
        season.yield_t_ha = 3.0  # no quantity, no harvest dates
        with pytest.raises(IntegrityError):
            session.flush()


# -- constraints -------------------------------------------------------------------


def field(farm_id: str = "pear-orchard", field_id: str = "f02", **changes: Any) -> Field:
    values: dict[str, Any] = {
        "farm_id": farm_id,
        "field_id": field_id,
        "crop": "fragrant_pear",
        "area_ha": 1.0,
        "planting_month_day": "03-20",
        "soil": "loam",
        "lat": 41.7,
        "lon": 86.1,
    }
    return Field(**(values | changes))


def test_a_new_field_is_accepted(loaded: sessionmaker[Session]) -> None:
    assert not rejected(loaded, field())  # the baseline the rejections below differ from


def test_a_second_field_with_the_same_id_on_a_farm_is_rejected(
    loaded: sessionmaker[Session],
) -> None:
    assert rejected(loaded, field(field_id="f01"))
    assert not rejected(loaded, field(farm_id="garlic-coop-1", field_id="f01", crop="garlic"))


def test_a_field_of_an_unknown_farm_is_rejected(loaded: sessionmaker[Session]) -> None:
    assert rejected(loaded, field(farm_id="no-such-farm"))


def test_a_field_of_an_unknown_crop_is_rejected(loaded: sessionmaker[Session]) -> None:
    assert rejected(loaded, field(crop="durian"))


def test_a_device_of_an_unknown_field_is_rejected(loaded: sessionmaker[Session]) -> None:
    device = Device(id="x-1", farm_id="pear-orchard", field_id="f99", kind="sensor", interval_s=60)
    assert rejected(loaded, device)


def test_out_of_range_values_are_rejected(loaded: sessionmaker[Session]) -> None:
    assert rejected(loaded, field(area_ha=0.0))
    bad_kind = Device(id="x-2", farm_id="pear-orchard", field_id="f01", kind="robot", interval_s=1)
    assert rejected(loaded, bad_kind)
    backwards = Campaign(
        platform_id="pdd",
        crop="garlic",
        region_id="zhongmou",
        start_on=date(2024, 6, 10),
        end_on=date(2024, 6, 1),
        uplift=2.0,
        hangover=0.1,
        source="history",
    )
    assert rejected(loaded, backwards)


def test_a_farm_in_an_unknown_region_is_rejected(loaded: sessionmaker[Session]) -> None:
    assert rejected(loaded, Farm(id="lost", region_id="atlantis", lat=0.0, lon=0.0))


# -- queries -----------------------------------------------------------------------


def test_fields_are_found_by_crop_and_region(
    loaded: sessionmaker[Session], scenario: Scenario
) -> None:
    expected = sorted(
        (farm.id, plan.id)
        for farm in scenario.all_farms()
        for plan in farm.fields
        if plan.crop == "garlic" and farm.region == "zhongmou"
    )
    with loaded() as session:
        garlic = find_fields(session, crop="garlic", region_id="zhongmou")
        assert [(f.farm_id, f.field_id) for f in garlic] == expected
        assert find_fields(session, crop="garlic", region_id="korla") == []
        korla = find_fields(session, region_id="korla")
        assert [(f.farm.id, f.crop) for f in korla] == [("pear-orchard", "fragrant_pear")]


def test_training_seasons_are_those_with_truth_known_by_the_date(
    loaded: sessionmaker[Session],
) -> None:
    early = SeasonTruth(30.0, 300.0, date(2023, 8, 20), date(2023, 9, 5), date(2023, 9, 30))
    with loaded.begin() as session:
        record_season_truth(session, "pear-orchard", "f01", 2023, early)
        record_season_truth(session, "garlic-coop-1", "north", 2024, TRUTH)
    with loaded() as session:
        every = seasons_with_truth(session)
        assert [(s.year, s.field_id) for s in every] == [(2023, "f01"), (2024, "north")]
        as_of = seasons_with_truth(session, known_on=date(2024, 1, 1))
        assert [(s.year, s.field_id) for s in as_of] == [(2023, "f01")]
        assert [s.crop for s in seasons_with_truth(session, region_id="zhongmou")] == ["garlic"]
        assert seasons_with_truth(session, crop="maize") == []
        untrained = list_seasons(session, year=2024, has_truth=False)
        assert ("garlic-coop-1", "north") not in {(s.farm_id, s.field_id) for s in untrained}


# -- campaigns ---------------------------------------------------------------------


def test_recording_campaigns_twice_keeps_one_row_each(
    loaded: sessionmaker[Session], scenario: Scenario
) -> None:
    with loaded.begin() as session:
        first = [c.id for c in record_campaigns(session, scenario.campaigns)]
    with loaded.begin() as session:
        second = [c.id for c in record_campaigns(session, scenario.campaigns)]
        assert len(list_campaigns(session)) == 2
    assert first == second


def test_a_recommendation_does_not_overwrite_history(
    loaded: sessionmaker[Session], scenario: Scenario
) -> None:
    history = scenario.campaigns[0]
    recommended = history.model_copy(update={"uplift": 5.0})
    with loaded.begin() as session:
        record_campaigns(session, [history])
        record_campaigns(session, [recommended], source="recommended")
    with loaded() as session:
        rows = list_campaigns(session, crop="garlic")
        assert sorted((c.source, c.uplift) for c in rows) == [
            ("history", 8.0),
            ("recommended", 5.0),
        ]
        [only] = list_campaigns(session, crop="garlic", source="recommended")
        assert only.uplift == 5.0


def test_campaign_outcomes_round_trip(loaded: sessionmaker[Session], scenario: Scenario) -> None:
    with loaded.begin() as session:
        [campaign] = record_campaigns(session, scenario.campaigns[:1])
        assert campaign.volume_kg is None
        record_campaign_outcome(session, campaign.id, volume_kg=165_000.0, absorbed_kg=120_000.0)
    with loaded.begin() as session:
        # Recording the campaign again keeps its outcome.
        record_campaigns(session, scenario.campaigns[:1])
    with loaded() as session:
        [again] = list_campaigns(session, platform_id="pdd")
    assert (again.id, again.volume_kg, again.absorbed_kg) == (campaign.id, 165_000.0, 120_000.0)


def test_campaigns_are_listed_by_region_and_overlap(
    loaded: sessionmaker[Session], scenario: Scenario
) -> None:
    with loaded.begin() as session:
        record_campaigns(session, scenario.campaigns)
    with loaded() as session:

        def crops(**filters: Any) -> list[str]:
            return [c.crop for c in list_campaigns(session, **filters)]

        assert crops() == ["garlic", "fragrant_pear"]  # by start
        assert crops(region_id="korla") == ["fragrant_pear"]
        assert crops(overlapping=(date(2023, 6, 10), date(2023, 6, 30))) == ["garlic"]
        assert crops(overlapping=(date(2023, 6, 11), date(2023, 8, 31))) == []
        assert crops(overlapping=(date(2023, 1, 1), date(2023, 12, 31))) == [
            "garlic",
            "fragrant_pear",
        ]


def test_campaigns_need_a_known_platform(loaded: sessionmaker[Session]) -> None:
    plan = CampaignPlan(
        platform="kuaishou",
        crop="garlic",
        region="zhongmou",
        start=date(2024, 6, 1),
        end=date(2024, 6, 5),
        uplift=2.0,
    )
    with loaded() as session, pytest.raises(IntegrityError):
        record_campaigns(session, [plan])


# -- backend-independent -------------------------------------------------------------


def test_device_ids_are_valid_topic_ids_or_an_error() -> None:
    assert device_ids("farm", "f01", sensors=2, camera=True) == [
        ("farm-f01-d1", "sensor"),
        ("farm-f01-d2", "sensor"),
        ("farm-f01-cam", "camera"),
    ]
    assert device_ids("farm", "f01", sensors=0, camera=False) == []
    long_farm = "a" * 40
    with pytest.raises(RegistryError, match="shorten farm"):
        device_ids(long_farm, "f" * 23, sensors=1, camera=False)  # 65 characters


def test_planting_date_clamps_to_the_month_and_sows_garlic_the_autumn_before() -> None:
    from agrimatch.agronomy.seasons import planting_date

    assert planting_date("maize", "02-29", 2023) == date(2023, 2, 28)
    assert planting_date("maize", "02-29", 2024) == date(2024, 2, 29)
    assert planting_date("garlic", "10-01", 2024) == date(2023, 10, 1)


def test_the_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    url = database_url(Settings(data_dir=tmp_path, database_url=None))
    assert url == f"sqlite:///{tmp_path / 'registry.sqlite3'}"


def test_a_plain_postgresql_url_selects_psycopg() -> None:
    url = database_url(Settings(database_url=SecretStr("postgresql://u:p@db:5432/agrimatch")))
    assert url == "postgresql+psycopg://u:p@db:5432/agrimatch"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deep' / 'registry.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()
