"""A jobs store in the test's folder (SQLite) on the test's clock."""

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


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> BatchStore:
    sessions = open_database(sqlite_url(tmp_path))
    files = FileStore(sessions, tmp_path / "files", FileLimits(max_bytes=1 << 20, max_files=100), clock)
    return BatchStore(sessions, files, BatchLimits(max_lines=100, lease_s=10.0), clock=clock)
