"""Fixtures of the import tests: a migrated SQLite registry, and CSV text as tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from textwrap import dedent

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.registry import make_engine, migrate, session_factory
from forecasting.imports import RawTable, import_farms, import_fields, parse_csv

FARMS_CSV = """\
farm,region,lat,lon,region_name,elevation_m
coop-1,zhongmou,34.72,113.98,"Zhongmou, Henan",90
coop-2,zhongmou,34.70,113.90,,
"""

FIELDS_CSV = """\
farm,field,crop,area_ha,planted_on,soil,lat,lon
coop-1,north,garlic,2.5,2023-10-05,loam,34.72,113.98
coop-1,south,maize,4,2024-04-20,sandy_loam,34.71,113.97
coop-2,east,garlic,1.5,2023-10-01,clay_loam,34.70,113.90
"""


def csv(text: str) -> RawTable:
    """A table from CSV text written indented in a test."""
    return parse_csv(dedent(text), source="test.csv")


@pytest.fixture
def sessions(tmp_path) -> Iterator[sessionmaker[Session]]:
    """A migrated SQLite registry of its own."""
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def with_farms(sessions) -> sessionmaker[Session]:
    """The registry with FARMS_CSV imported (region zhongmou, farms coop-1 and coop-2)."""
    with sessions.begin() as session:
        assert import_farms(session, csv(FARMS_CSV)).written
    return sessions


@pytest.fixture
def with_fields(with_farms) -> sessionmaker[Session]:
    """The registry with FARMS_CSV and FIELDS_CSV imported."""
    with with_farms.begin() as session:
        assert import_fields(session, csv(FIELDS_CSV)).written
    return with_farms


def count(sessions: sessionmaker[Session], query: Callable[[Session], object]) -> object:
    """What ``query`` finds in a fresh session."""
    with sessions() as session:
        return query(session)
