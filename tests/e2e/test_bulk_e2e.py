"""The bulk runner against real ``bentoml serve`` replicas, under the faults of its issue: a replica SIGKILLed at 25%
and restarted at 60%, the runner SIGKILLed at 80% and run again; then the same manifest in process, killed at 50%
and resumed. Every id ends with exactly one result file, the bad entries recorded once (and listed in
failures.jsonl), no temporary file left, and both executors write the same texts.

3 replicas and 60 items plus the three bad entries keep every fault within a few minutes on 2 cores;
``BULK_E2E_ITEMS=300`` runs the issue's size (about 10 minutes here)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from bench.bulk import (
    REPLICA_ENV,
    Manifest,
    bulk_command,
    failures,
    result_count,
    results,
    start_bulk,
    wait_for_results,
    write_manifest,
)
from bench.server import RunningServer, free_port, metric_total, running_server
from tests.support.bulk_runs import check_exactly_once, kill_group

ITEMS = int(os.environ.get("BULK_E2E_ITEMS", "60"))
INFLIGHT = 2
"""Requests in flight per replica: what a kill can leave unfinished, hence the bound on duplicated work."""
TRANSCRIPTIONS = re.compile(r'"event": "transcription".*"status": 200')


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, english_short) -> Manifest:
    return write_manifest(tmp_path_factory.mktemp("bulk") / "manifest.jsonl", english_short, ITEMS)


def completed_transcriptions(server: RunningServer) -> int:
    """Transcriptions the replica answered with 200: its counter, or, for a killed one, its request log lines (a
    lower bound: a line still in the pipe at the kill is lost)."""
    if server.process.poll() is not None:
        return len(TRANSCRIPTIONS.findall(server.log()))
    return int(metric_total(httpx.get(f"{server.url}/metrics").text, "stt_requests_total", outcome="ok"))


@pytest.fixture(scope="module")
def http_run(manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The http run under faults; what the tests check of it."""
    out = tmp_path_factory.mktemp("bulk-http-out")
    log = out.parent / "runner.log"
    ports = [free_port() for _ in range(3)]
    with ExitStack() as stack:
        first, second, third = (stack.enter_context(running_server(REPLICA_ENV, port=port)) for port in ports)
        command = bulk_command(manifest.path, out, "http", [first.url, second.url, third.url],
                               "--per-replica-inflight", str(INFLIGHT), "--max-attempts", "1000")
        runner = start_bulk(command, log=log)
        try:
            wait_for_results(out, ITEMS // 4, runner)
            second.kill()  # replica 2 dies mid-run
            wait_for_results(out, 3 * ITEMS // 5, runner)
            os.kill(runner.pid, signal.SIGSTOP)  # while the replica starts again (tens of seconds)
            restarted = stack.enter_context(running_server(REPLICA_ENV, port=ports[1]))
            os.kill(runner.pid, signal.SIGCONT)
            wait_for_results(out, 4 * ITEMS // 5, runner)
            assert runner.poll() is None, "the runner finished before it could be killed at 80%"
            kill_group(runner)  # the runner dies mid-run
        finally:
            if runner.poll() is None:
                kill_group(runner)
        at_kill = result_count(out)
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=600,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
        return {
            "out": out, "rerun": rerun, "at_kill": at_kill,
            "completed": sum(completed_transcriptions(s) for s in (first, second, third, restarted)),
            "restarted_served": completed_transcriptions(restarted),
            "runner_log": log.read_text(errors="replace"),
        }


def test_every_id_has_exactly_one_result_after_replica_and_runner_kills(http_run, manifest: Manifest):
    rerun = http_run["rerun"]
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert http_run["at_kill"] < ITEMS
    written = check_exactly_once(http_run["out"], manifest)
    assert all(entry["text"] for entry in written.values())
    by_id = {entry["id"]: entry for entry in failures(http_run["out"])}
    assert by_id["unknown-model"]["status"] == 404 and by_id["unknown-model"]["error"]["error"]["param"] == "model"
    assert by_id["undecodable-readme"]["status"] == 400


def test_duplicated_work_is_bounded_by_what_was_in_flight_at_the_kills(http_run, manifest: Manifest):
    duplicated = http_run["completed"] - len(manifest.good_ids)
    assert duplicated <= 3 * INFLIGHT + INFLIGHT, http_run["completed"]


def test_the_restarted_replica_got_traffic_again(http_run):
    assert http_run["restarted_served"] > 0, http_run["rerun"].stdout


def test_inprocess_killed_at_half_and_resumed_writes_the_same_texts(http_run, manifest: Manifest,
                                                                     tmp_path: Path):
    out = tmp_path / "out"
    command = bulk_command(manifest.path, out, "inprocess", (), "--concurrency", "2")
    env = {**REPLICA_ENV, "OMP_WAIT_POLICY": "PASSIVE"}
    runner = start_bulk(command, env=env, log=tmp_path / "inprocess.log")
    try:
        wait_for_results(out, ITEMS // 2, runner)
    finally:
        if runner.poll() is None:
            kill_group(runner)
    assert result_count(out) < ITEMS
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "HF_HUB_OFFLINE": "1", **env})
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    written = check_exactly_once(out, manifest)
    over_http = results(http_run["out"])
    assert {i: e["text"] for i, e in written.items()} == {i: e["text"] for i, e in over_http.items()}
