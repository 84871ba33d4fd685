"""Two real ``bentoml serve`` replicas sharing one PostgreSQL and one jobs folder: a batch submitted to one is run by
both, one is killed (SIGKILL) mid-batch, the other finishes it with every line exactly once."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import openai
import pytest

from bench.corpus import Utterance
from bench.server import running_server
from tests.support.postgres import Postgres, Unavailable, running_postgres

pytestmark = pytest.mark.slow
TRANSCRIPTIONS = "/v1/audio/transcriptions"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgres())
        except Unavailable as exc:
            pytest.skip(f"PostgreSQL could not start: {exc}")
        yield server


def test_two_replicas_share_a_batch_and_one_killed_loses_no_line(tmp_path: Path, postgres: Postgres,
                                                                  english_short: list[Utterance]):
    env = {"STT_DEVICE": "cpu", "STT_JOBS_DIR": str(tmp_path / "jobs"), "STT_JOBS_DATABASE_URL": postgres.new_database(),
           "STT_JOBS_LEASE_S": "6", "STT_JOBS_POLL_S": "0.2"}
    total = 24
    with running_server(env, cpus=[0]) as survivor, running_server(env, cpus=[1]) as victim:
        sdk = openai.OpenAI(base_url=f"{victim.url}/v1", api_key="x", max_retries=0, timeout=120)
        ids = [sdk.files.create(file=clip.path, purpose="user_data").id for clip in english_short[:4]]
        lines = [{"custom_id": f"line-{n}", "method": "POST", "url": TRANSCRIPTIONS,
                  "body": {"file": ids[n % len(ids)]}} for n in range(total)]
        batch_input = sdk.files.create(file=("in.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
                                       purpose="batch")
        batch = sdk.batches.create(input_file_id=batch_input.id, endpoint=TRANSCRIPTIONS, completion_window="24h")
        deadline = time.monotonic() + 300
        while (counts := sdk.batches.retrieve(batch.id).request_counts) is None or counts.completed < 4:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait(30)
        assert counts.completed < total, "the batch finished before the kill: make it longer"
        sdk = openai.OpenAI(base_url=f"{survivor.url}/v1", api_key="x", max_retries=0, timeout=120)
        while (done := sdk.batches.retrieve(batch.id)).status not in ("completed", "failed"):
            assert time.monotonic() < deadline, done.request_counts
            time.sleep(0.2)
        assert done.status == "completed"
        output = [json.loads(raw) for raw in sdk.files.content(done.output_file_id).content.splitlines()]
        workers = survivor.log() + victim.log()
    assert Counter(line["custom_id"] for line in output) == Counter(f"line-{n}" for n in range(total))
    assert all(line["response"]["status_code"] == 200 and line["response"]["body"]["text"] for line in output)
    assert workers.count("batch worker replica-") >= 2  # both replicas ran a worker
