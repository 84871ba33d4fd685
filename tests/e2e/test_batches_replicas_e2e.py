"""Two real ``bentoml serve`` replicas sharing one PostgreSQL and one jobs folder: a batch submitted to one is run by
both, one is killed (SIGKILL) mid-batch, the other finishes it with every line exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.corpus import Utterance
from bench.server import running_server
from tests.support.batches_sdk import client, completed_lines, read_lines, submit_lines, wait_for, wait_until
from tests.support.postgres import Postgres

pytestmark = pytest.mark.slow


def test_two_replicas_share_a_batch_and_one_killed_loses_no_line(tmp_path: Path, postgres: Postgres,
                                                                  english_short: list[Utterance]):
    env = {"STT_DEVICE": "cpu", "STT_JOBS_DIR": str(tmp_path / "jobs"), "STT_JOBS_DATABASE_URL": postgres.new_database(),
           "STT_JOBS_LEASE_S": "6", "STT_JOBS_POLL_S": "0.2"}
    total = 24
    with running_server(env, cpus=[0]) as survivor, running_server(env, cpus=[1]) as victim:
        sdk = client(victim)
        batch = submit_lines(sdk, english_short[:4], total)
        wait_until(lambda: completed_lines(sdk, batch.id) >= 4)
        at_kill = completed_lines(sdk, batch.id)
        victim.kill()  # the arbiter and its workers, as a crash would
        assert at_kill < total, "the batch finished before the kill: make it longer"
        sdk = client(survivor)
        done = wait_for(sdk, batch.id, {"completed", "failed"})
        assert done.status == "completed"
        output = read_lines(sdk, done.output_file_id)
        workers = survivor.log() + victim.log()
    assert Counter(line["custom_id"] for line in output) == Counter(f"line-{n}" for n in range(total))
    assert all(line["response"]["status_code"] == 200 and line["response"]["body"]["text"] for line in output)
    assert workers.count("batch worker replica-") >= 2  # both replicas ran a worker
