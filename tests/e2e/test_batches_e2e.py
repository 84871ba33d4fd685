"""OpenAI's Batch API on a real ``bentoml serve``, driven by the official SDK: files in, a batch of transcription
lines, its output read back with each body equal to the synchronous route's answer for the same request, a bad line
(an undecodable file) in the error file with its 400, an interactive request served during the batch, and a server
killed mid-batch (SIGKILL) whose successor on the same data directory finishes it, every line exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from bench.corpus import Utterance
from bench.server import free_port, running_server
from tests.support.batches_sdk import (
    TRANSCRIPTIONS,
    client,
    completed_lines,
    jsonl,
    line,
    read_lines,
    submit_lines,
    wait_for,
    wait_until,
)

pytestmark = pytest.mark.slow
FORMATS = ["json", "verbose_json", "text", "srt"]


def jobs_env(jobs_dir: Path) -> dict[str, str]:
    return {"STT_DEVICE": "cpu", "STT_JOBS_DIR": str(jobs_dir), "STT_JOBS_LEASE_S": "6", "STT_JOBS_POLL_S": "0.2"}


INTERACTIVE_LIMITS = {"STT_MAX_INFLIGHT_PER_MODEL": "1", "STT_MAX_BATCH_SIZE": "1", "STT_MAX_QUEUED_PER_MODEL": "3"}
"""One request decoding and three waiting: the fourth interactive request at once is the last one admitted."""


def transcribe(url: str, clip: Utterance, statuses: list[int]) -> None:
    response = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": (clip.path.name, clip.path.read_bytes())},
                          timeout=300)
    statuses.append(response.status_code)


def test_a_batch_answers_what_the_synchronous_route_answers(tmp_path: Path, english_short: list[Utterance]):
    clips = english_short[:4]
    with running_server({**jobs_env(tmp_path / "jobs"), **INTERACTIVE_LIMITS}) as server:
        sdk = client(server)
        ids = [sdk.files.create(file=clip.path, purpose="user_data").id for clip in clips]
        bad = sdk.files.create(file=("bad.wav", b"RIFF this is not audio" * 50), purpose="user_data").id
        lines = [line(f"{n}-{fmt}", {"file": file_id, "response_format": fmt})
                 for n, file_id in enumerate(ids) for fmt in FORMATS[n % 2::2]]
        lines += [line(f"more-{n}", {"file": ids[n % 4]}) for n in range(39)]  # 50 lines in all, as the issue says
        lines.append(line("undecodable", {"file": bad}))
        lines.append(line("unknown-model", {"file": ids[0], "model": "no-such-model"}))
        lines.append(line("not-allowed", {"url": "http://169.254.169.254/latest/meta-data/"}))
        assert len(lines) == 50
        batch_input = sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
        batch = sdk.batches.create(input_file_id=batch_input.id, endpoint=TRANSCRIPTIONS, completion_window="24h",
                                   metadata={"suite": "e2e"})
        running = wait_for(sdk, batch.id, {"in_progress", "finalizing", "completed"})
        while (running := sdk.batches.retrieve(batch.id)).request_counts.completed < 1:  # a line has run
            time.sleep(0.1)
        statuses: list[int] = []  # as many interactive requests as the model admits, while a line runs
        requests = [threading.Thread(target=transcribe, args=(server.url, clip, statuses)) for clip in clips]
        for request in requests:
            request.start()
        for request in requests:
            request.join(300)
        assert running.status == "in_progress" and running.request_counts.completed < len(lines)
        assert statuses == [200] * 4
        done = wait_for(sdk, batch.id)
        assert done.status == "completed" and done.metadata == {"suite": "e2e"}
        assert done.request_counts is not None
        assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (
            len(lines), len(lines) - 3, 3)
        outputs = {item["custom_id"]: item for item in read_lines(sdk, done.output_file_id)}
        assert len(outputs) == len(lines) - 3
        for n, clip in enumerate(clips):
            for fmt in FORMATS[n % 2::2]:
                synchronous = httpx.post(f"{server.url}/v1/audio/transcriptions", data={"response_format": fmt},
                                         files={"file": (clip.path.name, clip.path.read_bytes())}, timeout=120)
                assert synchronous.status_code == 200
                expected = synchronous.text if fmt in ("text", "srt") else synchronous.json()
                response = outputs[f"{n}-{fmt}"]["response"]
                assert response["status_code"] == 200 and response["body"] == expected, (n, fmt)
        errors = {item["custom_id"]: item["response"] for item in read_lines(sdk, done.error_file_id)}
        assert set(errors) == {"undecodable", "unknown-model", "not-allowed"}
        synchronous = httpx.post(f"{server.url}/v1/audio/transcriptions",
                                 files={"file": ("bad.wav", b"RIFF this is not audio" * 50)}, timeout=120)
        assert errors["undecodable"]["status_code"] == synchronous.status_code == 400
        assert errors["undecodable"]["body"] == synchronous.json()
        synchronous = httpx.post(f"{server.url}/v1/audio/transcriptions", data={"model": "no-such-model"},
                                 files={"file": (clips[0].path.name, clips[0].path.read_bytes())}, timeout=120)
        assert errors["unknown-model"]["status_code"] == synchronous.status_code == 404
        assert errors["unknown-model"]["body"] == synchronous.json()
        assert errors["not-allowed"]["status_code"] == 400
        assert errors["not-allowed"]["body"]["error"]["code"] == "url_not_allowed"


def test_a_batch_survives_a_killed_server_every_line_once(tmp_path: Path, english_short: list[Utterance]):
    jobs_dir, port = tmp_path / "jobs", free_port()
    lines_total = 16
    with running_server(jobs_env(jobs_dir), port=port) as server:
        sdk = client(server)
        batch = submit_lines(sdk, english_short[:4], lines_total)
        wait_until(lambda: completed_lines(sdk, batch.id) >= 3)
        counts = completed_lines(sdk, batch.id)
        server.kill()  # the arbiter and its workers, as a crash would
    assert counts < lines_total, "the batch finished before the kill: make it longer"
    with running_server(jobs_env(jobs_dir), port=port) as restarted:
        sdk = client(restarted)
        done = wait_for(sdk, batch.id)
        every = [item["custom_id"] for item in read_lines(sdk, done.output_file_id) + read_lines(sdk, done.error_file_id)]
    assert done.status == "completed"
    assert done.request_counts is not None and done.request_counts.completed == lines_total
    assert Counter(every) == Counter(f"line-{n}" for n in range(lines_total))


def item_counts(jobs_dir: Path) -> Counter:
    with sqlite3.connect(jobs_dir / "jobs.sqlite") as database:
        return Counter(dict(database.execute("SELECT status, count(*) FROM items GROUP BY status").fetchall()))


def test_sigterm_stops_claiming_lets_the_running_line_finish_and_a_restart_goes_on(tmp_path: Path,
                                                                                    english_short: list[Utterance]):
    jobs_dir, port = tmp_path / "jobs", free_port()
    total = 16
    with running_server({**jobs_env(jobs_dir), "STT_DRAIN_TIMEOUT_S": "60"}, port=port) as server:
        batch = submit_lines(client(server), english_short[:4], total)
        wait_until(lambda: item_counts(jobs_dir)["succeeded"] >= 2, poll_s=0.05)
        os.killpg(server.process.pid, signal.SIGTERM)
        at_sigterm = item_counts(jobs_dir)["succeeded"]
        server.process.wait(120)
    stopped = item_counts(jobs_dir)
    assert stopped["running"] == 0  # the line running at SIGTERM finished (a SIGKILL leaves it running)
    assert at_sigterm <= stopped["succeeded"] <= at_sigterm + 2  # at most the line running, and one claimed meanwhile
    assert stopped["pending"] > 0
    with running_server(jobs_env(jobs_dir), port=port) as restarted:
        done = wait_for(client(restarted), batch.id)
    assert done.status == "completed" and done.request_counts is not None
    assert done.request_counts.completed == total
