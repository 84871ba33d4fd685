"""The jobs' database: an SQLAlchemy engine on the URL the operator gives (SQLite under the jobs directory by
default, PostgreSQL for several replicas), its schema brought up to date by the Alembic migrations."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = threading.Lock()


def sqlite_url(jobs_dir: Path) -> str:
    return f"sqlite:///{jobs_dir / 'jobs.sqlite'}"


def open_database(url: str) -> sessionmaker[Session]:
    """Sessions on ``url``'s database, migrated to the latest schema (each replica runs the migrations at start;
    Alembic's version table makes a migration that has run a no-op)."""
    engine = _engine(url)
    with _MIGRATION_LOCK, engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return sessionmaker(engine, expire_on_commit=False)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(connection, _record) -> None:  # noqa: ANN001 (a DBAPI connection)
    """WAL lets readers (the routes) go on while the worker writes; a writer waits for another up to 30 s."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
