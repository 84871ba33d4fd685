"""Replicas sharing one database and files folder (each its own engine and connection pool, as separate processes
have): every line runs exactly once, and the line of a replica that died holding it runs again elsewhere once its
lease passes. On SQLite (one host's replicas) and on a real PostgreSQL (``FOR UPDATE SKIP LOCKED``)."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.jobs import states
from pipeline.jobs.batches import BatchLimits, BatchStore, ClaimedItem, Outcome
from pipeline.jobs.database import open_database
from pipeline.jobs.files import FileStore
from pipeline.jobs.worker import BatchWorker, WorkerSettings
from tests.support.jobs import TRANSCRIPTIONS, EchoRunner, input_file


@dataclass
class SlowRunner(EchoRunner):
    seconds: float = 0.01
    ran_by: list[str] = field(default_factory=list)

    def run(self, item: ClaimedItem) -> Outcome:
        time.sleep(self.seconds)
        return super().run(item)


def replica(database_url: str, files_dir: Path, lease_s: float) -> BatchStore:
    sessions = open_database(database_url)
    return BatchStore(sessions, FileStore(sessions, files_dir), BatchLimits(max_lines=1000, lease_s=lease_s))


def test_two_replicas_run_every_line_once_and_take_over_a_dead_replicas_line(tmp_path: Path, database_url: str):
    files_dir = tmp_path / "shared-files"
    first, second, dead = (replica(database_url, files_dir, lease_s=1.0) for _ in range(3))
    batch_input = first.files.create(io.BytesIO(input_file(60)), "in.jsonl", "batch")
    batch_id = first.create(batch_input.id, TRANSCRIPTIONS, "24h").id
    runners = [SlowRunner(), SlowRunner()]
    workers = [BatchWorker(store, runner, WorkerSettings(workers=2, poll_s=0.05))
               for store, runner in zip((first, second), runners, strict=True)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 60
        while (held := dead.claim("dead-replica", lambda body: True)) is None:  # claimed, then the replica dies
            assert time.monotonic() < deadline
            time.sleep(0.01)
        while first.get(batch_id).status != states.COMPLETED:
            assert time.monotonic() < deadline, first.counts(batch_id)
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.stop(10)
    assert not dead.finish("dead-replica", held.id, Outcome(200, {"text": "too late"}))
    ran = Counter(runners[0].ran + runners[1].ran)
    assert ran == Counter(f"c{n}" for n in range(60))  # the dead replica's line too, once, by a live one
    assert runners[0].ran and runners[1].ran  # both replicas took lines
    done = second.get(batch_id)
    lines = [json.loads(raw) for raw in second.files.path(done.output_file_id).read_bytes().splitlines()]
    assert sorted(line["custom_id"] for line in lines) == sorted(f"c{n}" for n in range(60))
    assert all(line["response"]["body"] == {"text": f"t{line['custom_id'][1:]}"} for line in lines)
