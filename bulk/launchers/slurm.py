"""``--executor slurm``: the manifest as a Slurm job array, one shard per array task.

Each array task runs the ordinary runner with the inprocess executor on its shard (``python -m bulk run MANIFEST --out
DIR --executor inprocess --shard I/N``) and writes the shared output folder itself; there is no second transcription
path. This launcher:

1. reads the manifest and the folder, and finds the shards that still have pending items (the resume rule);
2. writes the batch script into ``DIR/slurm/`` (the submitting venv's Python by absolute path, the project root as the
   working directory, ``HF_HUB_OFFLINE=1``, the engine's workers and threads sized to ``SLURM_CPUS_PER_TASK``);
3. submits ``sbatch --parsable --array=<those shards>%K`` and, unless ``--no-wait``, waits: it polls ``squeue`` (no
   accounting database needed: ``sacct`` is not used), shows the progress bar from the folder, and resubmits a shard
   whose task ended (failed, cancelled, preempted, node failure, time limit) with items still pending, up to
   ``max_resubmits`` times per shard;
4. rebuilds ``failures.jsonl`` and writes the summary (throughput, each worker's share from the result files'
   ``worker`` field) as ``summary.json``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..manifest import Item, read_manifest
from ..outputs import Outputs, RunDefaults
from ..progress import Progress
from ..sharding import shard_of
from ..status import Finished, split
from ..summary import Summary

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SLURM_DIR = "slurm"
SCRIPT_NAME = "bulk-array.sh"
ENDED_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                          "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"})
"""squeue states of a task that will not run again by itself (a requeued one shows PENDING)."""


class SlurmError(RuntimeError):
    """A Slurm command failed (sbatch refused the job, squeue cannot reach the controller for long)."""


@dataclass(frozen=True)
class SlurmOptions:
    tasks: int = 4
    """Shards of the manifest: the array's size. Keep it between runs of the same output folder (the shards of
    another N are other sets of ids: still correct, since every task skips what is finished, but not one-to-one)."""
    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int = 1
    array_parallelism: int = 0
    """Array tasks running at once (``%K``); 0: as many as the cluster gives."""
    time_limit: str | None = None
    max_resubmits: int = 2
    """Times a shard is submitted again after its task ended with items pending."""
    wait: bool = True
    poll_s: float = 2.0
    job_name: str = "bulk"
    run_args: tuple[str, ...] = ()
    """Arguments passed on to each task's ``python -m bulk run`` (``--model``, ``--response-format``, ...)."""


def array_spec(shards: Iterable[int], parallelism: int = 0) -> str:
    """``--array``'s value: the shards as ranges (``0,2-3``), ``%K`` when the parallelism is bounded."""
    ordered = sorted(set(shards))
    if not ordered:
        raise ValueError("no shard to submit")
    ranges: list[str] = []
    start = previous = ordered[0]
    for shard in [*ordered[1:], None]:
        if shard is not None and shard == previous + 1:
            previous = shard
            continue
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
        if shard is not None:
            start = previous = shard
    return ",".join(ranges) + (f"%{parallelism}" if parallelism > 0 else "")


def batch_script(manifest: Path, out: Path, options: SlurmOptions, python: str = sys.executable,
                 root: Path = PROJECT_ROOT) -> str:
    """The script every array task runs: shard ``$SLURM_ARRAY_TASK_ID`` of ``options.tasks`` with the inprocess
    executor. Paths are absolute: the tasks start on other hosts, in Slurm's working directory."""
    directives = [f"--job-name={options.job_name}", f"--output={out / SLURM_DIR / 'logs' / '%A_%a.log'}",
                  "--ntasks=1", f"--cpus-per-task={options.cpus_per_task}"]
    if options.partition:
        directives.append(f"--partition={options.partition}")
    if options.gpus_per_task:
        directives.append(f"--gpus-per-task={options.gpus_per_task}")
    if options.time_limit:
        directives.append(f"--time={options.time_limit}")
    command = [python, "-m", "bulk", "run", str(manifest), "--out", str(out), "--executor", "inprocess",
               "--no-progress", *options.run_args]
    # On CPU, CTranslate2 decodes best with one worker per core, one thread each; on a GPU, one worker with the
    # task's cores as its threads. A setting the submitting environment exports (sbatch passes it on) wins.
    if options.gpus_per_task:
        sizing = ['export STT_CPU_THREADS="${STT_CPU_THREADS:-$cpus}"']
    else:
        sizing = ['export STT_ENGINE_WORKERS="${STT_ENGINE_WORKERS:-$cpus}"',
                  'export STT_CPU_THREADS="${STT_CPU_THREADS:-1}"']
    return "\n".join([
        "#!/bin/bash",
        "# Written by `python -m bulk run --executor slurm`: array task I runs shard I of "
        f"{options.tasks} of the manifest.",
        "# Submitted with sbatch --parsable --array=<the shards with pending items>[%K] this-script.",
        *(f"#SBATCH {directive}" for directive in directives),
        "set -euo pipefail",
        f"cd {shlex.quote(str(root))}",
        "export HF_HUB_OFFLINE=1  # compute nodes reach no network: models come from the shared Hugging Face cache",
        "export OMP_WAIT_POLICY=PASSIVE",
        f'cpus="${{SLURM_CPUS_PER_TASK:-{options.cpus_per_task}}}"',
        *sizing,
        f'exec {shlex.join(command)} --concurrency "$cpus" --shard "${{SLURM_ARRAY_TASK_ID}}/{options.tasks}"',
        "",
    ])


Runner = Callable[[Sequence[str]], subprocess.CompletedProcess]


def _run(command: Sequence[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(command), capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SlurmError(f"{command[0]} not found: run this on a Slurm login node (or a host with Slurm's client "
                         "commands and SLURM_CONF)") from None
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(command), 1, "", f"{command[0]} timed out")


@dataclass
class SlurmClient:
    """``sbatch`` and ``squeue``, as the user's environment finds them (``SLURM_CONF`` and so on)."""

    run: Runner = _run

    def submit(self, script: Path, spec: str) -> str:
        done = self.run(["sbatch", "--parsable", f"--array={spec}", str(script)])
        if done.returncode != 0:
            raise SlurmError(f"sbatch --array={spec} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout.strip().split(";")[0]  # "JOBID" or "JOBID;CLUSTER"

    def states(self, jobs: Iterable[str]) -> dict[tuple[str, int], str] | None:
        """The state of every array task of ``jobs`` the controller still knows, by (job, task); None when squeue
        could not answer (try again later). A task absent from the answer has ended and been purged."""
        jobs = sorted(set(jobs))
        if not jobs:
            return {}
        done = self.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(jobs), "-o", "%F|%K|%T"])
        if done.returncode != 0:
            if "Invalid job id" in done.stderr:
                return {}  # none of them is known any more
            return None
        states: dict[tuple[str, int], str] = {}
        for line in done.stdout.splitlines():
            try:
                job, task, state = line.strip().split("|")
                states[(job, int(task))] = state
            except ValueError:
                continue  # not an array task
        return states


@dataclass
class _Tracking:
    running: dict[int, str] = field(default_factory=dict)
    """Shard -> the job whose array task runs it now."""
    resubmits: dict[int, int] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)


def launch(manifest: Path, out: Path, options: SlurmOptions, defaults: RunDefaults = RunDefaults(),
           client: SlurmClient | None = None, progress: bool = True) -> Summary:
    """Submit the shards with pending items and (``options.wait``) wait for them, resubmitting ended shards that
    still have pending items; the summary is written as ``summary.json``. With ``wait=False`` the summary says what
    was submitted and nothing was done yet."""
    client = client or SlurmClient()
    out = out.resolve()
    items = [defaults.apply(item) for item in read_manifest(manifest)]
    outputs = Outputs(out)
    summary = Summary("slurm", items=len(items))
    summary.removed_temporaries = len(outputs.remove_leftover_temporaries())
    before, pending = split(outputs, items)
    summary.skipped = len(before)
    shards = _shards(pending, options.tasks)
    started = time.monotonic()
    if not shards:
        _finish(outputs, summary, started, pending)
        return summary
    script = write_batch_script(manifest.resolve(), out, options)
    tracking = _Tracking()
    _submit(client, script, sorted(shards), options, tracking, summary)
    if not options.wait:
        summary.gave_up = len(pending)
        summary.events.append(f"not waiting: `python -m bulk status {manifest} --out {out}` tells where the run "
                              f"stands; `scancel {tracking.jobs[-1]}` stops it")
        summary.write(out)
        return summary
    bar = Progress(len(pending), enabled=progress)
    try:
        pending = _wait(client, outputs, script, options, tracking, summary, bar, pending)
    except KeyboardInterrupt:
        summary.events.append(f"interrupted: job(s) {', '.join(tracking.jobs)} go on running; "
                              f"`scancel {' '.join(tracking.jobs)}` stops them")
        raise
    finally:
        bar.close()
        _finish(outputs, summary, started, pending)
    return summary


def write_batch_script(manifest: Path, out: Path, options: SlurmOptions) -> Path:
    path = out / SLURM_DIR / SCRIPT_NAME
    (out / SLURM_DIR / "logs").mkdir(parents=True, exist_ok=True)
    path.write_text(batch_script(manifest, out, options))
    path.chmod(0o755)
    return path


def _shards(pending: Iterable[Item], count: int) -> set[int]:
    return {shard_of(item.id, count) for item in pending}


def _submit(client: SlurmClient, script: Path, shards: list[int], options: SlurmOptions, tracking: _Tracking,
            summary: Summary) -> None:
    spec = array_spec(shards, options.array_parallelism)
    job = client.submit(script, spec)
    tracking.jobs.append(job)
    for shard in shards:
        tracking.running[shard] = job
    summary.events.append(f"submitted job {job}: --array={spec}")


def _wait(client: SlurmClient, outputs: Outputs, script: Path, options: SlurmOptions, tracking: _Tracking,
          summary: Summary, bar: Progress, pending: list[Item]) -> list[Item]:
    unanswered_since: float | None = None
    while tracking.running:
        time.sleep(options.poll_s)
        states = client.states(set(tracking.running.values()))
        if states is None:  # the controller did not answer: keep waiting, up to a bound
            unanswered_since = unanswered_since or time.monotonic()
            if time.monotonic() - unanswered_since > 600:
                raise SlurmError("squeue has not answered for 10 minutes")
            continue
        unanswered_since = None
        # Tasks that ended before this look at the folder: what they wrote is there now.
        ended = {shard: job for shard, job in tracking.running.items()
                 if states.get((job, shard), "COMPLETED") in ENDED_STATES}
        newly, pending = split(outputs, pending)
        _count(newly, summary, bar)
        left = _shards(pending, options.tasks)
        again = []
        for shard, job in ended.items():
            del tracking.running[shard]
            state = states.get((job, shard), "ended")
            if shard not in left:
                continue
            if state != "COMPLETED":
                summary.events.append(f"shard {shard} (job {job}) ended {state} with items pending")
            if tracking.resubmits.get(shard, 0) < options.max_resubmits:
                tracking.resubmits[shard] = tracking.resubmits.get(shard, 0) + 1
                again.append(shard)
            else:
                summary.events.append(f"shard {shard}: not resubmitted ({options.max_resubmits} resubmits used)")
        if again:
            _submit(client, script, sorted(again), options, tracking, summary)
    newly, pending = split(outputs, pending)
    _count(newly, summary, bar)
    return pending


def _count(newly: list[Finished], summary: Summary, bar: Progress) -> None:
    for outcome in newly:
        if outcome.failed:
            summary.failed += 1
            bar.advance(failed=True)
            continue
        summary.done += 1
        summary.audio_s += outcome.audio_s
        summary.retries += max(0, outcome.attempts - 1)
        worker = outcome.worker or "unknown"
        summary.per_worker[worker] = summary.per_worker.get(worker, 0) + 1
        bar.advance(audio_s=outcome.audio_s)


def _finish(outputs: Outputs, summary: Summary, started: float, pending: list[Item]) -> None:
    summary.gave_up = len(pending)
    summary.wall_s = time.monotonic() - started
    outputs.rebuild_failures_index()
    summary.write(outputs.root)
