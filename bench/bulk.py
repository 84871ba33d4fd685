"""The bulk runner's throughput over 1, 2 and 3 replicas, each pinned to one core with ``taskset``, against one
replica on both cores; on a local Ray with 1 and 2 actors; as a Slurm job array of 1 and 2 tasks, each bound by
Slurm to one core (a one-node cluster started here, ``bench.slurm_cluster``); and the manifests, commands and result
readers the end-to-end tests share.

    .venv/bin/python -m bench.bulk [--items 40] [--repeats 3] [--inflight 3] [--only "2 replicas"]

Every configuration runs the same manifest (the English short utterances of the corpus, repeated to ``--items``)
through ``python -m bulk run --executor http`` into a fresh output folder, ``--repeats`` times, the configurations
taking turns within each repeat (every replica is started once, before the first run); reported as min / median /
max of audio seconds per second of wall time (the runner's own summary). A replica pinned to one core
runs one engine worker (the engine sizes itself from the cores it may use); the one-replica-on-both-cores baseline
runs two. On a 2-core machine, expect about 2x from 1 to 2 pinned replicas and nothing more at 3 (the third shares
core 0 with the first).

The Ray configurations (``--executor ray``, the optional extra) run 1 and 2 actors of one CPU each (one engine
worker, one thread; Ray does not pin them to cores). Their wall time includes what the http ones do not: starting
the local Ray and each actor loading its model, ten to twenty seconds, so on a short manifest they read low.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.corpus import Utterance, audio_dir, english_short_utterances
from bench.server import ROOT, RunningServer, running_server
from bench.slurm_cluster import SlurmCluster, slurm_cluster

UNKNOWN_MODEL = "no-such-model"


@dataclass(frozen=True)
class Manifest:
    path: Path
    good_ids: list[str]
    bad_ids: list[str]
    """Two undecodable files and one unknown model: permanent failures, each expected recorded once."""


def write_manifest(path: Path, utterances: Sequence[Utterance], count: int, bad_entries: bool = True) -> Manifest:
    """``count`` items cycling over ``utterances`` (ids with a ``/``, as real ids have), and the bad entries."""
    lines = []
    good = []
    for number, utterance in zip(range(count), itertools.cycle(utterances)):
        item_id = f"{number:05d}/{utterance.path.stem}"
        good.append(item_id)
        lines.append({"id": item_id, "audio": str(utterance.path)})
    bad = []
    if bad_entries:
        corpus = audio_dir()
        bad_lines = [{"id": "undecodable-readme", "audio": str(corpus / "README.md")},
                     {"id": "undecodable-manifest", "audio": str(corpus / "manifest.jsonl")},
                     {"id": "unknown-model", "audio": str(utterances[0].path), "model": UNKNOWN_MODEL}]
        bad = [line["id"] for line in bad_lines]
        # Spread through the run, not at its end.
        for offset, line in zip((count // 5, count // 2, 4 * count // 5), bad_lines):
            lines.insert(offset, line)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return Manifest(path, good, bad)


def bulk_command(manifest: Path, out: Path, executor: str, servers: Sequence[str] = (), *extra: str) -> list[str]:
    return [sys.executable, "-m", "bulk", "run", str(manifest), "--out", str(out), "--executor", executor,
            *itertools.chain.from_iterable(("--server", s) for s in servers), "--no-progress", *extra]


def start_bulk(command: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    output = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
                            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def result_count(out: Path) -> int:
    return sum(1 for _ in (out / "results").glob("*/*.json")) if (out / "results").exists() else 0


def results(out: Path) -> dict[str, dict]:
    """Every result file's content by its id; raises on two files with one id."""
    found: dict[str, dict] = {}
    for path in (out / "results").glob("*/*.json"):
        content = json.loads(path.read_text())
        if content["id"] in found:
            raise AssertionError(f"two result files for {content['id']!r}")
        found[content["id"]] = content
    return found


def failures(out: Path) -> list[dict]:
    """The recorded failures: one file per id under ``failures/`` (the record), sorted by id."""
    entries = [json.loads(path.read_text()) for path in (out / "failures").glob("*/*.json")]
    return sorted(entries, key=lambda entry: entry["id"])


def failures_index(out: Path) -> list[dict]:
    """``failures.jsonl``, the index a run rebuilds from the failure files at its end."""
    path = out / "failures.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def temporaries(out: Path) -> list[Path]:
    """Temporary files anywhere in the output folder (results, failures, the index, summaries)."""
    return sorted(out.rglob(".*.tmp"))


def wait_for_results(out: Path, count: int, process: subprocess.Popen | None = None, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while result_count(out) < count:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the runner exited with {process.returncode} at {result_count(out)} results")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{result_count(out)} results after {timeout_s} s, not {count}")
        time.sleep(0.1)


REPLICA_ENV = {"STT_DEVICE": "cpu"}


@contextmanager
def replicas(
    cpu_sets: Sequence[Sequence[int] | None], env: dict[str, str] | None = None
) -> Iterator[list[RunningServer]]:
    """One ``bentoml serve`` per entry, pinned to its cores (None: unpinned), started one after another."""
    with ExitStack() as stack:
        yield [stack.enter_context(running_server({**REPLICA_ENV, **(env or {})}, cpus=cpus)) for cpus in cpu_sets]


REPLICAS: dict[str, list[int]] = {"A": [0], "B": [1], "C": [0], "D": [0, 1]}
"""The replicas the configurations share: A, B and C pinned to one core each (C shares core 0 with A), D on both."""
CONFIGURATIONS: dict[str, list[str]] = {
    "1 replica, pinned to core 0": ["A"],
    "2 replicas, pinned to cores 0 and 1": ["A", "B"],
    "3 replicas, pinned to cores 0, 1 and 0": ["A", "B", "C"],
    "1 replica on both cores (baseline)": ["D"],
}


SLURM_CONFIGURATIONS: dict[str, int] = {
    "1 Slurm array task, pinned by Slurm to one CPU": 1,
    "2 Slurm array tasks at once, each pinned by Slurm to one CPU": 2,
}
"""Array tasks (shards) per run, all running at once: the one-node test cluster (``bench.slurm_cluster``) with
``TaskPlugin=task/affinity``, so each task with ``--cpus-per-task 1`` is bound to its own core. Each task starts a
Python and loads the model: that start is in its wall time (it is in a real array task's too)."""


RAY_CONFIGURATIONS: dict[str, int] = {
    "ray, 1 actor (1 CPU, one engine worker)": 1,
    "ray, 2 actors (1 CPU each, one engine worker each)": 2,
}
"""Actors per configuration, on a local Ray the runner starts (``--executor ray``)."""


def run_once(servers: list[RunningServer], manifest: Path, work: Path, inflight: int) -> float:
    """One run of the manifest over ``servers`` into a fresh folder: audio seconds per second (the summary's)."""
    return run_command(bulk_command(manifest, work / f"out-{time.monotonic_ns()}", "http", [s.url for s in servers],
                                    "--per-replica-inflight", str(inflight)))


def run_ray_once(actors: int, manifest: Path, work: Path) -> float:
    """One run of the manifest on a local Ray of ``actors`` one-CPU actors: audio seconds per second."""
    return run_command(bulk_command(manifest, work / f"out-{time.monotonic_ns()}", "ray", (), "--workers",
                                    str(actors), "--cpus-per-worker", "1"), env=REPLICA_ENV)


def run_slurm_once(cluster: SlurmCluster, tasks: int, manifest: Path, work: Path) -> float:
    """One run of the manifest as a ``tasks``-task array, every task at once, into a fresh folder."""
    command = bulk_command(manifest, work / f"out-{time.monotonic_ns()}", "slurm", (), "--tasks", str(tasks),
                           "--array-parallelism", str(tasks), "--cpus-per-task", "1", "--max-resubmits", "0")
    return run_command(command, {**cluster.env, **REPLICA_ENV})


def run_command(command: list[str], env: dict[str, str] | None = None) -> float:
    out = Path(command[command.index("--out") + 1])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return json.loads((out / "summary.json").read_text())["audio_s_per_s"]


def spread(values: list[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=40, help="manifest items (the short utterances, repeated)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inflight", type=int, default=3, help="requests in flight per replica")
    parser.add_argument("--only", help="run only the configurations whose name contains this")
    args = parser.parse_args()
    utterances = english_short_utterances(audio_dir())
    if not utterances:
        print(f"no corpus at {audio_dir()}", file=sys.stderr)
        return 2
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two cores", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as directory:
        work = Path(directory)
        manifest = write_manifest(work / "manifest.jsonl", utterances, args.items, bad_entries=False)
        warm_up = write_manifest(work / "warm-up.jsonl", utterances, 4, bad_entries=False)
        audio_s = sum(u.duration_s for u, _ in zip(itertools.cycle(utterances), range(args.items)))
        print(f"{args.items} items, {audio_s:.0f} s of audio (English short utterances); {args.inflight} requests in "
              f"flight per replica; {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}; "
              f"audio s/s min / median / max over {args.repeats} runs")
        chosen = {name: names for name, names in CONFIGURATIONS.items() if not args.only or args.only in name}
        chosen_slurm = {name: n for name, n in SLURM_CONFIGURATIONS.items() if not args.only or args.only in name}
        on_ray = {name: actors for name, actors in RAY_CONFIGURATIONS.items() if not args.only or args.only in name}
        needed = sorted({n for names in chosen.values() for n in names})
        speeds: dict[str, list[float]] = {name: [] for name in [*chosen, *on_ray, *chosen_slurm]}
        loads: list[float] = []
        # Every replica runs all along (idle ones cost nothing), and the configurations take turns within each
        # repeat, so a load that comes and goes on the machine falls on all of them alike.
        with ExitStack() as stack:
            servers = dict(zip(needed, stack.enter_context(replicas([REPLICAS[n] for n in needed]))))
            cluster = (stack.enter_context(slurm_cluster(work / "slurm", cpus=2, task_plugin="task/affinity"))
                       if chosen_slurm else None)
            runs: dict[str, Callable[[Path], float]] = {
                **{name: partial(lambda names, path: run_once([servers[n] for n in names], path, work, args.inflight),
                                 names) for name, names in chosen.items()},
                **{name: partial(lambda actors, path: run_ray_once(actors, path, work), actors)
                   for name, actors in on_ray.items()},
                **{name: partial(lambda tasks, path: run_slurm_once(cluster, tasks, path, work), tasks)
                   for name, tasks in chosen_slurm.items()},
            }
            for run in runs.values():  # warm-up: every replica (and the page cache) decodes a few files first
                run(warm_up.path)
            for repeat in range(args.repeats):
                for name, run in runs.items():
                    speeds[name].append(run(manifest.path))
                    loads.append(os.getloadavg()[0])
                print(f"repeat {repeat + 1}: " + ", ".join(f"{v[-1]:.1f}" for v in speeds.values()), flush=True)
        print("| configuration | audio s/s (min / median / max) |\n|---|---|")
        for name, values in speeds.items():
            print(f"| {name} | {spread(values)} |")
        print(f"1-minute load average after each run: {min(loads):.2f} to {max(loads):.2f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
