"""``--executor slurm`` on a real one-node Slurm cluster (Debian's slurm-wlm and munge, started in a temporary folder
by ``bench.slurm_cluster``; 2 CPUs, so at most 2 array tasks at once): the 200-item manifest (bad entries included) as
a 4-task array, one array task ``scancel``led mid-run, then the same command again. Every id has exactly one result,
the re-run submits only the shard that has missing ids, no temporary file is left, each bad entry is recorded once,
the texts equal the inprocess run's, and ``python -m bulk status`` agrees with the files. And, on a smaller manifest,
a task cancelled while the command waits is resubmitted by that same command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.bulk import (
    Manifest,
    bulk_command,
    failures,
    failures_index,
    results,
    start_bulk,
    temporaries,
    write_manifest,
)
from bench.server import ROOT
from bench.slurm_cluster import SlurmCluster, SlurmUnavailable, slurm_cluster
from bulk.manifest import read_manifest
from bulk.outputs import RunDefaults
from bulk.sharding import shard_of

ITEMS = 200
TASKS = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    try:
        with slurm_cluster(tmp_path_factory.mktemp("slurm"), cpus=2) as started:
            yield started
    except SlurmUnavailable as exc:
        pytest.skip(f"no one-node Slurm cluster here: {exc}")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, english_short) -> Manifest:
    return write_manifest(tmp_path_factory.mktemp("bulk-slurm") / "manifest.jsonl", english_short, ITEMS)


def slurm_command(manifest: Manifest, out: Path) -> list[str]:
    return bulk_command(manifest.path, out, "slurm", (), "--tasks", str(TASKS), "--array-parallelism", "2",
                        "--cpus-per-task", "1", "--max-resubmits", "0")


def running_tasks(cluster: SlurmCluster) -> dict[int, str]:
    """Running array tasks: shard -> ``JOB_TASK`` (what scancel takes)."""
    listed = cluster.run("squeue", "-h", "-r", "-t", "RUNNING", "-o", "%F|%K", check=False).stdout
    return {int(task): f"{job}_{task}" for job, task in (line.split("|") for line in listed.split())}


def shard_results(out: Path, shard: int, tasks: int = TASKS) -> int:
    return sum(shard_of(content["id"], tasks) == shard for content in results(out).values())


def submitted_specs(out: Path) -> list[str]:
    events = json.loads((out / "summary.json").read_text())["events"]
    return [match.group(1) for event in events if (match := re.match(r"submitted job \d+: --array=(\S+)", event))]


def status(manifest: Manifest, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bulk", "status", str(manifest.path), "--out", str(out), "--tasks",
                           str(TASKS)], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def slurm_run(cluster: SlurmCluster, manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bulk-slurm-out")
    env = {**cluster.env, "STT_DEVICE": "cpu"}
    launcher = start_bulk(slurm_command(manifest, out), env=env, log=out.parent / "launcher.log")
    try:
        deadline = time.monotonic() + 600
        cancelled = None
        while cancelled is None:  # a running task with a few results written, to be cancelled mid-shard
            assert launcher.poll() is None and time.monotonic() < deadline, (out.parent / "launcher.log").read_text()
            cancelled = next((shard for shard in running_tasks(cluster) if shard_results(out, shard) >= 3), None)
            time.sleep(0.5)
        cluster.run("scancel", running_tasks(cluster)[cancelled])
        launcher.wait(900)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    first = {"returncode": launcher.returncode, "specs": submitted_specs(out),
             "summary": json.loads((out / "summary.json").read_text()), "status": status(manifest, out)}
    items = [RunDefaults().apply(item) for item in read_manifest(manifest.path)]
    finished = set(results(out)) | {entry["id"] for entry in failures(out)}
    missing_shards = sorted({shard_of(item.id, TASKS) for item in items if item.id not in finished})
    rerun = subprocess.run(slurm_command(manifest, out), cwd=ROOT, capture_output=True, text=True, timeout=900,
                           env={**os.environ, "HF_HUB_OFFLINE": "1", **env})
    return {"out": out, "cancelled": cancelled, "first": first, "missing_shards": missing_shards, "rerun": rerun,
            "rerun_specs": submitted_specs(out), "status": status(manifest, out)}


def test_the_first_run_submits_every_shard_and_reports_the_cancelled_one(slurm_run):
    first = slurm_run["first"]
    assert first["specs"] == [f"0-{TASKS - 1}%2"]
    assert first["returncode"] == 1  # not complete: the cancelled shard has items left, and no resubmits allowed
    assert any(f"shard {slurm_run['cancelled']} " in event and "ended" in event
               for event in first["summary"]["events"]), first["summary"]["events"]
    assert first["status"].returncode == 1 and f"shard {slurm_run['cancelled']}/{TASKS}:" in first["status"].stdout


def test_the_rerun_submits_only_the_shard_with_missing_ids_and_every_id_ends_exactly_once(slurm_run, manifest):
    rerun = slurm_run["rerun"]
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert slurm_run["missing_shards"] == [slurm_run["cancelled"]]
    assert slurm_run["rerun_specs"] == [f"{slurm_run['cancelled']}%2"]
    out = slurm_run["out"]
    written = results(out)  # raises on two files for one id
    assert sorted(written) == sorted(manifest.good_ids)
    assert temporaries(out) == []
    assert sorted(entry["id"] for entry in failures(out)) == sorted(manifest.bad_ids)  # each once
    assert failures_index(out) == failures(out)


def test_the_texts_equal_the_inprocess_run(slurm_run, inprocess_texts: dict[str, str]):
    written = results(slurm_run["out"])
    assert {i: e["text"] for i, e in written.items()} == {i: inprocess_texts[e["audio"]] for i, e in written.items()}
    assert {e["executor"] for e in written.values()} == {"inprocess"}  # the array tasks run the inprocess executor


def test_status_agrees_with_the_files(slurm_run, manifest):
    found = slurm_run["status"]
    assert found.returncode == 0, found.stdout
    assert f"{len(manifest.good_ids) + len(manifest.bad_ids)} items: {len(results(slurm_run['out']))} done, " \
           f"{len(failures(slurm_run['out']))} failed for good, 0 pending" in found.stdout


def test_the_summary_gives_the_throughput_and_each_workers_share(slurm_run):
    summary = json.loads((slurm_run["out"] / "summary.json").read_text())
    assert summary["executor"] == "slurm" and summary["complete"] and summary["audio_s_per_s"] > 0
    assert sum(summary["per_worker"].values()) == summary["done"] > 0
    assert re.search(r"^  inprocess:\S+: \d+ items \(\d+%\)$", slurm_run["rerun"].stdout, re.MULTILINE)


def test_a_task_cancelled_mid_run_is_resubmitted_by_the_same_command(cluster: SlurmCluster, english_short,
                                                                     tmp_path: Path):
    """Within one run: the launcher sees the task end CANCELLED with items pending and submits its shard again."""
    manifest = write_manifest(tmp_path / "manifest.jsonl", english_short, 24, bad_entries=False)
    out = tmp_path / "out"
    command = bulk_command(manifest.path, out, "slurm", (), "--tasks", "2", "--array-parallelism", "2",
                           "--cpus-per-task", "1", "--max-resubmits", "1")
    launcher = start_bulk(command, env={**cluster.env, "STT_DEVICE": "cpu"}, log=tmp_path / "launcher.log")
    try:
        deadline = time.monotonic() + 600
        while (shard := next((s for s in running_tasks(cluster) if shard_results(out, s, 2) >= 2), None)) is None:
            assert launcher.poll() is None and time.monotonic() < deadline, (tmp_path / "launcher.log").read_text()
            time.sleep(0.5)
        cluster.run("scancel", running_tasks(cluster)[shard])
        assert launcher.wait(600) == 0, (tmp_path / "launcher.log").read_text()
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert submitted_specs(out) == ["0-1%2", f"{shard}%2"]
    events = json.loads((out / "summary.json").read_text())["events"]
    assert any(event.startswith(f"shard {shard} (job ") and "ended CANCELLED" in event for event in events), events
    assert sorted(results(out)) == sorted(manifest.good_ids) and temporaries(out) == []
