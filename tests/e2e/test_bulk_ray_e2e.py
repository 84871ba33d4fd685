"""The ray executor on a real local Ray (2 actors) under the faults of its issue: a 200-item manifest from the corpus
with its bad entries; one actor SIGKILLed mid-run, then the driver SIGKILLed mid-run and the same command run
again, an actor SIGKILLed in that run too. Every id ends with exactly one result file, the bad entries once in
failures.jsonl, no temporary file left, the texts those of an inprocess run, the summary with its throughput and
every actor's share (the replacement's included), every Ray server on 127.0.0.1, and no Ray process left. And a
batch that kills every actor it meets: its items left for the next run, the rest done.

The inprocess reference is the session's (``inprocess_texts`` in tests/e2e/conftest.py: each short English
recording once; an id's text depends only on its recording and options); the manifest cycles over the shortest
recordings, so the whole module takes a few minutes on 2 cores."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import psutil
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
from bench.corpus import Utterance
from bulk.executors.base import Done, GaveUp
from bulk.executors.ray import BATCH_ITEMS, RayExecutor, RayOptions
from bulk.manifest import Item
from tests.support.bulk_runs import check_exactly_once
from tests.support.ray_actors import POISON, PoisonedTranscriber

pytestmark = pytest.mark.slow
pytest.importorskip("ray", reason="Ray is an optional extra: pip install -r requirements-ray.txt (make test does)")

ITEMS = 200
RECORDINGS = 12
"""The shortest recordings of the corpus, cycled over the items."""
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1"}
ENV = {**REPLICA_ENV, "OMP_WAIT_POLICY": "PASSIVE"}


@pytest.fixture(scope="module")
def recordings(english_short: list[Utterance]) -> list[Utterance]:
    return sorted(english_short, key=lambda u: u.duration_s)[:RECORDINGS]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, recordings: list[Utterance]) -> Manifest:
    return write_manifest(tmp_path_factory.mktemp("bulk-ray") / "manifest.jsonl", recordings, ITEMS)


def session_processes(session: int) -> list[psutil.Process]:
    """The processes of a runner's session: the runner, the local Ray it started (its servers and actors)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session:
                found.append(process)
        except (ProcessLookupError, PermissionError):
            continue
    return found


def actors(session: int) -> list[psutil.Process]:
    found = []
    for process in session_processes(session):
        try:
            if "BulkTranscriber" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def kill_an_actor(session: int) -> int:
    deadline = time.monotonic() + 60
    while not (pool := actors(session)):
        assert time.monotonic() < deadline, "no actor of the pool found"
        time.sleep(0.2)
    pool[0].kill()
    return pool[0].pid


def listening_addresses(session: int) -> set[str]:
    addresses = set()
    for process in session_processes(session):
        try:
            addresses |= {c.laddr.ip for c in process.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    return addresses


def wait_for_the_session_to_end(session: int, timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while (left := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(1)
    return left


@pytest.fixture(scope="module")
def ray_run(manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    out = tmp_path_factory.mktemp("bulk-ray-out")
    command = bulk_command(manifest.path, out, "ray", (), "--workers", "2", "--cpus-per-worker", "1")
    sessions: list[int] = []
    run: dict[str, object] = {"out": out}
    try:
        first = start_bulk(command, env=ENV, log=out.parent / "first.log")
        sessions.append(first.pid)
        wait_for_results(out, ITEMS // 10, first)
        run["listening"] = listening_addresses(first.pid)
        run["actor_niceness"] = {process.nice() for process in actors(first.pid)}
        run["first_killed_actor"] = kill_an_actor(first.pid)  # an actor dies mid-run
        wait_for_results(out, 7 * ITEMS // 20, first)
        assert first.poll() is None, "the first run finished before its driver could be killed"
        os.kill(first.pid, signal.SIGKILL)  # the driver dies mid-run (its process alone, as a crash would)
        first.wait(30)
        run["at_kill"] = result_count(out)
        second = start_bulk(command, env=ENV, log=out.parent / "second.log")
        sessions.append(second.pid)
        wait_for_results(out, 3 * ITEMS // 5, second)
        run["second_killed_actor"] = kill_an_actor(second.pid)  # and one in the resumed run: its summary shows it
        run["returncode"] = second.wait(600)
        run["log"] = (out.parent / "second.log").read_text(errors="replace")
        # The first run's Ray lost its driver: its agents wait for the dead GCS about a minute, then exit.
        run["left"] = {session: wait_for_the_session_to_end(session, 120) for session in sessions}
        yield run
    finally:
        for session in sessions:
            for process in session_processes(session):
                process.kill()


def test_every_id_has_exactly_one_result_after_actor_and_driver_kills(ray_run, manifest: Manifest):
    assert ray_run["returncode"] == 0, ray_run["log"]
    assert 0 < ray_run["at_kill"] < ITEMS
    written = check_exactly_once(ray_run["out"], manifest)
    assert all(entry["executor"] == "ray" and entry["worker"].startswith("ray:") for entry in written.values())
    by_id = {entry["id"]: entry for entry in failures(ray_run["out"])}
    assert by_id["unknown-model"]["error"]["error"]["param"] == "model"
    assert by_id["undecodable-readme"]["error"]["error"]["type"] == "unsupported_media"


def test_the_texts_are_those_of_the_inprocess_executor(ray_run, inprocess_texts: dict[str, str]):
    written = results(ray_run["out"])
    assert {entry["text"] for entry in written.values()} <= set(inprocess_texts.values())
    assert {i: e["text"] for i, e in written.items()} == {i: inprocess_texts[e["audio"]] for i, e in written.items()}


def test_the_summary_reports_throughput_and_every_actors_share_the_replacement_included(ray_run, manifest: Manifest):
    summary = json.loads((ray_run["out"] / "summary.json").read_text())
    assert summary["executor"] == "ray" and summary["complete"] and summary["audio_s_per_s"] > 0
    assert summary["skipped"] >= ray_run["at_kill"]
    assert summary["done"] + summary["skipped"] + summary["failed"] == summary["items"]
    assert summary["items"] == len(manifest.good_ids) + len(manifest.bad_ids)
    workers = summary["per_worker"]
    assert len(workers) >= 3 and all(w.startswith("ray:") for w in workers), workers  # 2 actors and a replacement
    assert f":{ray_run['second_killed_actor']}" in " ".join(workers)
    assert any("replacement" in event for event in summary["events"])
    assert "audio s/s" in ray_run["log"] and "ray:" in ray_run["log"]


def test_every_ray_server_listened_on_127_0_0_1_only(ray_run):
    assert ray_run["listening"] and ray_run["listening"] <= LOOPBACK, ray_run["listening"]


def test_the_actors_run_at_the_runners_priority(ray_run):
    """Ray starts its workers at nice 15: beside any other work they would get only the cores nobody wants."""
    assert ray_run["actor_niceness"] == {os.nice(0)}


def test_no_ray_process_is_left(ray_run):
    assert ray_run["left"] == {session: [] for session in ray_run["left"]}


def test_a_batch_that_kills_every_actor_it_meets_is_left_for_the_next_run(monkeypatch: pytest.MonkeyPatch):
    """A batch whose actor dies on every retry (``max_task_retries``) does not stop the run nor loop for ever: its
    items come back as ``GaveUp`` (not recorded: the next run tries them again), every other item is done; the local
    Ray started here is gone after ``close``."""
    for variable in ("RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        monkeypatch.setenv(variable, os.environ.get(variable, ""))  # restored after the test
    from ray._private import ray_constants

    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", ray_constants.ENABLE_RAY_CLUSTER)
    items = [Item(id=f"i{n}", audio="/unused.wav") for n in range(12)]
    items.insert(5, Item(id=POISON, audio="/unused.wav"))
    executor = RayExecutor(RayOptions(workers=2, cpus_per_worker=0.5), actor=PoisonedTranscriber)
    try:
        outcomes = list(executor.run(items))
    finally:
        executor.close()
    assert sorted(o.item.id for o in outcomes) == sorted(item.id for item in items)  # one outcome each
    gave_up = {o.item.id for o in outcomes if isinstance(o, GaveUp)}
    assert POISON in gave_up and len(gave_up) <= BATCH_ITEMS  # the poison and at most its batch-mates
    assert all(isinstance(o, Done) and o.text == o.item.id for o in outcomes if o.item.id not in gave_up)
    deadline = time.monotonic() + 30
    while ray_children() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray_children() == []


def ray_children() -> list[str]:
    names = []
    for child in psutil.Process().children(recursive=True):
        try:
            names.append(" ".join(child.cmdline()))
        except psutil.Error:
            continue
    return [name for name in names if "ray" in name]
