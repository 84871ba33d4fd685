"""The Slurm launcher without a cluster: the array spec, the batch script (run by bash with a stand-in Python), and
the wait-and-resubmit loop against a scripted scheduler that writes the folder as the array tasks would. The real
cluster runs in tests/e2e/test_bulk_slurm_e2e.py."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bulk.launchers.slurm import SCRIPT_NAME, SLURM_DIR, SlurmClient, SlurmOptions, array_spec, batch_script, launch
from bulk.manifest import Item, read_manifest
from bulk.outputs import FAILURES_FILE, Outputs, RunDefaults
from bulk.sharding import Shard, shard_of
from bulk.summary import SUMMARY_FILE


def test_the_array_spec_lists_the_shards_as_ranges_with_the_parallelism():
    assert array_spec([3, 0, 2]) == "0,2-3"
    assert array_spec([0, 1, 2, 3], 2) == "0-3%2"
    assert array_spec([5]) == "5"
    assert array_spec([0, 2, 4, 5, 6, 9], 3) == "0,2,4-6,9%3"
    with pytest.raises(ValueError):
        array_spec([])


def test_the_batch_script_runs_the_inprocess_runner_on_its_shard_sized_to_the_task(tmp_path: Path):
    """bash runs the script as an array task would, with a stand-in Python that prints its arguments and the
    settings it was given."""
    python = tmp_path / "python"
    python.write_text('#!/bin/bash\necho "ARGS $*"; echo "CWD $PWD"; '
                      'env | grep -E "^(HF_HUB_OFFLINE|STT_ENGINE_WORKERS|STT_CPU_THREADS)=" | sort\n')
    python.chmod(0o755)
    options = SlurmOptions(tasks=4, cpus_per_task=3, partition="gpp", time_limit="02:00:00",
                           run_args=("--model", "tiny-en"))
    script = tmp_path / "array.sh"
    script.write_text(batch_script(Path("/data/m.jsonl"), Path("/data/out"), options, python=str(python),
                                   root=tmp_path))
    assert "#SBATCH --partition=gpp" in script.read_text() and "#SBATCH --time=02:00:00" in script.read_text()
    assert "#SBATCH --cpus-per-task=3" in script.read_text() and "--gpus-per-task" not in script.read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STT_")}
    ran = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True, cwd="/",
                         env={**env, "SLURM_ARRAY_TASK_ID": "2", "SLURM_CPUS_PER_TASK": "3"})
    lines = ran.stdout.splitlines()
    assert lines[0] == ("ARGS -m bulk run /data/m.jsonl --out /data/out --executor inprocess --no-progress --model "
                        "tiny-en --concurrency 3 --shard 2/4")
    assert lines[1] == f"CWD {tmp_path}"
    assert lines[2:] == ["HF_HUB_OFFLINE=1", "STT_CPU_THREADS=1", "STT_ENGINE_WORKERS=3"]
    on_gpu = batch_script(Path("/m"), Path("/o"), SlurmOptions(gpus_per_task=1, cpus_per_task=8))
    assert "#SBATCH --gpus-per-task=1" in on_gpu and "STT_ENGINE_WORKERS" not in on_gpu
    assert 'STT_CPU_THREADS="${STT_CPU_THREADS:-$cpus}"' in on_gpu


@dataclass
class ScriptedSlurm(SlurmClient):
    """Stands in for sbatch and squeue. A submitted array's tasks run at the next poll: each writes the results of its
    shard (failures for ids starting with "bad"), except that the shards in ``cancel_first`` are cancelled the first
    time, after half their items."""

    out: Path = Path()
    manifest: Path = Path()
    tasks: int = 4
    cancel_first: set[int] = field(default_factory=set)
    specs: list[str] = field(default_factory=list)
    scripts: list[Path] = field(default_factory=list)
    _queued: list[tuple[str, list[int]]] = field(default_factory=list)
    _ended: dict[tuple[str, int], str] = field(default_factory=dict)

    def submit(self, script: Path, spec: str) -> str:
        self.specs.append(spec)
        self.scripts.append(script)
        job = str(len(self.specs))
        self._queued.append((job, _expand(spec.split("%")[0])))
        return job

    def states(self, jobs: Iterable[str]) -> dict[tuple[str, int], str]:
        while self._queued:
            job, shards = self._queued.pop(0)
            for shard in shards:
                self._ended[(job, shard)] = self._run_task(job, shard)
        return {key: state for key, state in self._ended.items() if key[0] in set(jobs)}

    def _run_task(self, job: str, shard: int) -> str:
        outputs = Outputs(self.out)
        items = outputs.pending(Shard(shard, self.tasks).select(_items(self.manifest)))
        cancelled = shard in self.cancel_first
        self.cancel_first.discard(shard)
        for item in items[: len(items) // 2] if cancelled else items:
            if item.id.startswith("bad"):
                outputs.record_failure(item, None, {"error": {"message": "not audio"}})
            else:
                outputs.write_result(item, {"worker": f"task-{job}-{shard}", "text": item.id, "audio_s": 2.0,
                                            "attempts": 1})
        return "CANCELLED" if cancelled else "COMPLETED"


def _items(manifest: Path) -> list[Item]:
    """The manifest's items as the runner sees them (the command line's defaults applied)."""
    return [RunDefaults().apply(item) for item in read_manifest(manifest)]


def _expand(spec: str) -> list[int]:
    shards = []
    for part in spec.split(","):
        start, _, end = part.partition("-")
        shards += range(int(start), int(end or start) + 1)
    return shards


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    ids = [f"item/{n}" for n in range(40)] + ["bad-1", "bad-2"]
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps({"id": i, "audio": f"{i}.wav"}) + "\n" for i in ids))
    return path


def test_only_shards_with_pending_items_are_submitted_and_a_cancelled_one_is_resubmitted(tmp_path: Path,
                                                                                         manifest: Path):
    out = tmp_path / "out"
    items = _items(manifest)
    finished_shard = shard_of("item/0", 4)
    for item in Shard(finished_shard, 4).select(items):  # an earlier run finished one shard
        Outputs(out).write_result(item, {"worker": "earlier", "text": "", "audio_s": 2.0})
    cancelled = next(s for s in range(4) if s != finished_shard)
    slurm = ScriptedSlurm(out=out, manifest=manifest, cancel_first={cancelled})
    summary = launch(manifest, out, SlurmOptions(tasks=4, array_parallelism=2, poll_s=0.0), client=slurm,
                     progress=False)
    others = sorted(set(range(4)) - {finished_shard})
    assert slurm.specs == [array_spec(others, 2), f"{cancelled}%2"]
    assert slurm.scripts[0] == out.resolve() / SLURM_DIR / SCRIPT_NAME
    assert summary.complete and summary.failed == 2 and summary.skipped == len(Shard(finished_shard, 4).select(items))
    assert summary.done + summary.skipped + summary.failed == len(items)
    assert f"shard {cancelled} (job 1) ended CANCELLED with items pending" in summary.events
    assert sum(summary.per_worker.values()) == summary.done and f"task-2-{cancelled}" in summary.per_worker
    assert summary.audio_s == 2.0 * summary.done
    assert [json.loads(line)["id"] for line in (out / FAILURES_FILE).read_text().splitlines()] == ["bad-1", "bad-2"]
    assert json.loads((out / SUMMARY_FILE).read_text())["executor"] == "slurm"


def test_a_shard_past_its_resubmits_is_left_for_the_next_run(tmp_path: Path, manifest: Path):
    out = tmp_path / "out"
    slurm = ScriptedSlurm(out=out, manifest=manifest, cancel_first={1})
    summary = launch(manifest, out, SlurmOptions(tasks=4, max_resubmits=0, poll_s=0.0), client=slurm,
                     progress=False)
    assert slurm.specs == ["0-3"]
    assert not summary.complete and summary.gave_up > 0
    assert "shard 1: not resubmitted (0 resubmits used)" in summary.events
    again = ScriptedSlurm(out=out, manifest=manifest)  # the same command again
    summary = launch(manifest, out, SlurmOptions(tasks=4, poll_s=0.0), client=again, progress=False)
    assert again.specs == ["1"] and summary.complete


def test_nothing_is_submitted_when_every_item_is_finished(tmp_path: Path, manifest: Path):
    out = tmp_path / "out"
    launch(manifest, out, SlurmOptions(poll_s=0.0), client=ScriptedSlurm(out=out, manifest=manifest), progress=False)
    idle = ScriptedSlurm(out=out, manifest=manifest)
    summary = launch(manifest, out, SlurmOptions(poll_s=0.0), client=idle, progress=False)
    assert idle.specs == [] and summary.complete and summary.skipped == summary.items


def test_no_wait_submits_and_returns(tmp_path: Path, manifest: Path):
    out = tmp_path / "out"
    slurm = ScriptedSlurm(out=out, manifest=manifest)
    summary = launch(manifest, out, SlurmOptions(wait=False), client=slurm, progress=False)
    assert slurm.specs == ["0-3"] and summary.done == 0 and not summary.complete
    assert Outputs(out).result_files() == []  # the tasks have not run: nothing waited for them


def test_squeue_is_read_per_array_task_and_an_unknown_job_has_ended():
    calls = []

    def squeue(command):
        calls.append(command)
        if "9" in command[-3]:
            return subprocess.CompletedProcess(command, 1, "", "slurm_load_jobs error: Invalid job id specified")
        return subprocess.CompletedProcess(command, 0, "5|0|RUNNING\n5|2|PENDING\n5|3|CANCELLED\n", "")

    client = SlurmClient(run=squeue)
    assert client.states(["5"]) == {("5", 0): "RUNNING", ("5", 2): "PENDING", ("5", 3): "CANCELLED"}
    assert calls[0][:6] == ["squeue", "-h", "-r", "-t", "all", "-j"]
    assert client.states(["9"]) == {}
    client.run = lambda command: subprocess.CompletedProcess(command, 1, "", "Unable to contact slurm controller")
    assert client.states(["5"]) is None  # not an answer: keep waiting
