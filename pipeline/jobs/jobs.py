"""The jobs of one replica built from its settings: the database, the file store, the batch store, the worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .batches import BatchLimits, BatchStore
from .database import open_database, sqlite_url
from .files import FileLimits, FileStore
from .worker import BatchWorker, ItemRunner, WorkerSettings


@dataclass(frozen=True)
class JobsConfig:
    directory: Path
    """The data directory: the database (SQLite, unless ``database_url``) and the files folder."""
    database_url: str | None = None
    files: FileLimits = FileLimits()
    batches: BatchLimits = BatchLimits()
    worker: WorkerSettings = WorkerSettings()


@dataclass
class Jobs:
    files: FileStore
    batches: BatchStore
    worker: BatchWorker


def build_jobs(config: JobsConfig, runner_for: Callable[[FileStore], ItemRunner],
               should_claim: Callable[[], bool] = lambda: True,
               on_ended: Callable[[str, str], None] = lambda batch_id, status: None) -> Jobs:
    """``runner_for``: the runner of items, given the file store its lines name audio in; ``on_ended``: told of
    each batch that ends (``BatchWorker.on_ended``)."""
    config.directory.mkdir(parents=True, exist_ok=True)
    sessions = open_database(config.database_url or sqlite_url(config.directory))
    files = FileStore(sessions, config.directory / "files", config.files)
    batches = BatchStore(sessions, files, config.batches)
    return Jobs(files, batches, BatchWorker(batches, runner_for(files), config.worker, should_claim, on_ended))
