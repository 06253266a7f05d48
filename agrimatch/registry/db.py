"""Engines, sessions and schema migrations for the registry database.

SQLite (the default, a file in the data dir) and PostgreSQL are supported.
Migrations are Alembic's, run programmatically: the scripts ship inside the
package, so no ``alembic.ini`` is needed at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from agrimatch.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 10.0
_SQLITE_BEGIN_OPTION = "agrimatch_sqlite_begin"
# Any constant both processes agree on: serialises concurrent migrate() calls.
_MIGRATION_LOCK_ID = 0x61677269  # "agri"


class RegistryError(RuntimeError):
    """The registry database cannot do what was asked; the message says why."""


def database_url(settings: Settings) -> str:
    """The registry's SQLAlchemy URL: ``settings.database_url``, else SQLite in the data dir.

    A bare ``postgresql://`` (or ``postgres://``) URL selects psycopg 3, the
    driver agrimatch installs, instead of SQLAlchemy's default psycopg2.
    """
    if settings.database_url is None or not settings.database_url.get_secret_value():
        return f"sqlite:///{settings.data_dir / 'registry.sqlite3'}"
    url = make_url(settings.database_url.get_secret_value())
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and real transactions.

    For a SQLite file, its folder is created. Extra keyword arguments go to
    ``sqlalchemy.create_engine``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Pre-ping: a PostgreSQL restart must not surface as errors on pooled connections.
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    path = parsed.database
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite opens transactions itself, only before DML: DDL would run outside
    # any transaction (a failed migration would leave half a schema) and
    # SAVEPOINTs misbehave. Taking transaction control back (SQLAlchemy's
    # documented recipe) gives SQLite transactional DDL, as on PostgreSQL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers (API, forecasting) do not block the writer or each other.
        cursor.execute("PRAGMA journal_mode=WAL")
        # Off by default in SQLite, per connection: without it nothing is enforced.
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # "IMMEDIATE" takes the write lock up front, for a transaction that reads
    # and then writes (migrate): a deferred one would fail with SQLITE_BUSY
    # when another writer committed in between.
    mode = connection.get_execution_options().get(_SQLITE_BEGIN_OPTION, "")
    connection.exec_driver_sql(f"BEGIN {mode}".strip())


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``engine``; objects stay readable after commit (no expiry on commit).

    Use ``with factory.begin() as session:`` so one block is one transaction.
    """
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision the shipped migrations know."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise RegistryError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the database (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (Alembic ``upgrade``); a no-op when already there.

    Safe to call from several processes at once: they migrate one after the other.
    """
    with engine.connect() as connection:
        dialect = connection.dialect.name
        if dialect == "sqlite":
            # Batch migrations rebuild SQLite tables (copy, drop, rename); with
            # foreign keys on, dropping a parent table would cascade-delete its
            # children. The pragma only takes effect outside a transaction, so
            # it goes straight to the driver connection.
            _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
            connection = connection.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        try:
            with connection.begin():
                if dialect == "postgresql":
                    # API replicas and the scheduler may start at once: the first
                    # migrates, the others wait here, then find nothing to do.
                    # Released with the transaction.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
                    )
                command.upgrade(_alembic_config(connection), revision)
                if dialect == "sqlite":
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RegistryError(
                            f"migration left rows with dangling foreign keys: {broken[:5]}"
                        )
        finally:
            if dialect == "sqlite":
                _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(pragma)
    finally:
        cursor.close()
