"""A jobs store in the test's folder on the test's clock, on SQLite and on a throwaway PostgreSQL (started once for
the session on 127.0.0.1; the PostgreSQL cases skip, saying why, where it cannot start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.jobs.batches import BatchLimits, BatchStore
from pipeline.jobs.database import open_database, sqlite_url
from pipeline.jobs.files import FileLimits, FileStore
from tests.support.jobs import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def store(tmp_path: Path, clock: Clock, database_url: str) -> BatchStore:
    sessions = open_database(database_url)
    files = FileStore(sessions, tmp_path / "files", FileLimits(max_bytes=1 << 20, max_files=100), clock)
    return BatchStore(sessions, files, BatchLimits(max_lines=100, lease_s=10.0), clock=clock)
