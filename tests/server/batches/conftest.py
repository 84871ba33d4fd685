"""The ``/v1`` app with its jobs (SQLite and files in the test's folder) on the fake transcriber; the worker is
driven step by step by the test (``run_batch``), never started in the background."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.chat import Chat
from pipeline.jobs.files import FileLimits, FileStore
from pipeline.jobs.jobs import Jobs, JobsConfig, build_jobs
from server.batches.item_runner import AudioItemRunner, RunnerSettings
from server.collaborators import Collaborators
from server.edge.allowed_hosts import AllowedHosts
from tests.fakes import FakeModels
from tests.support.transcribers import chat_transcriber


@pytest.fixture
def jobs_config(tmp_path: Path) -> JobsConfig:
    return JobsConfig(directory=tmp_path / "jobs", files=FileLimits(max_bytes=2 * 2**20, max_files=50))


@pytest.fixture
def collaborators(fake_models: FakeModels, jobs_config: JobsConfig) -> Collaborators:
    transcriber = chat_transcriber(fake_models)

    def runner_for(files: FileStore) -> AudioItemRunner:
        return AudioItemRunner(transcriber, files, RunnerSettings(allowed_hosts=AllowedHosts.parse("127.0.0.1")))

    jobs = build_jobs(jobs_config, runner_for)
    return Collaborators(transcriber=transcriber, chat=Chat(transcriber), jobs=jobs)


@pytest.fixture
def jobs(collaborators: Collaborators) -> Jobs:
    assert collaborators.jobs is not None
    return collaborators.jobs


@pytest.fixture
def run_batch(jobs: Jobs) -> Callable[[], int]:
    """Runs the worker's steps until there is nothing left to do; the number of steps that worked."""

    def run() -> int:
        steps = 0
        while jobs.worker.step():
            steps += 1
            assert steps < 10_000
        return steps

    return run
