"""Alembic's environment for the jobs' database: run on the connection ``database.open_database`` hands over
(``config.attributes["connection"]``), or on ``sqlalchemy.url`` (``alembic -x`` from the command line)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from pipeline.jobs.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
