"""The ray executor: the items on a Ray cluster (a local one it starts, or ``--address`` to join one), as a Ray Data
``map_batches`` over an actor pool whose actors each build the project's own transcriber once and run their batches
through the inprocess executor's per-item code; this process iterates the rows the actors return and yields them as
outcomes to the runner, which writes the files (the one output contract, as for every executor).

The dataset is ``ray.data.from_items`` of the pending items, one JSON string each, not ``read_json`` of the
manifest: the runner has already read and validated the manifest and removed what is finished (the resume rule),
so this is exactly the work left; a file for ``read_json`` would be a second copy that every node must be able to
read, and a temporary file to clean up. The items are small (an id, a path, options: a few hundred bytes each),
and the runner holds them all in memory already.

Fault tolerance: Ray restarts a killed actor (``max_restarts``) and sends its unfinished batch again
(``max_task_retries``); a batch that keeps killing its actor is dropped after its retries (``max_errored_blocks``)
and its items are left for the next run (``GaveUp``). A killed driver loses what was in flight: the next run of the
same command skips every id written (the runner's rule).

The traps of running Ray on one machine, each handled in ``start_local_ray`` or ``actor_options``:

- Ray picks the machine's primary address for every server it starts, and turns ``_node_ip_address="127.0.0.1"``
  back into that address; with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (the switch for single-machine Ray) it keeps
  the loopback one, so every Ray server of a local run listens on 127.0.0.1 only.
- ``RAY_USAGE_STATS_ENABLED=0`` before Ray starts: usage statistics are on by default and go to an outside host.
- No dashboard (``include_dashboard=False``) and no ``runtime_env`` pip or conda (offline nodes): the actors run
  this project from the same path on every node (``PYTHONPATH``) with the packages already installed there.
- Fractional ``num_cpus`` per actor on CPU nodes: actors holding every CPU of the cluster leave none for Ray Data's
  own tasks, and the run hangs (ray #44687). ``num_gpus`` per actor on GPU nodes.
- Ray starts its workers at nice 15: on a machine that also runs anything else (the http replicas of a
  comparison, another job) the actors get only the cores nobody else wants. The local Ray runs them at nice 0.
- Actors are not pinned to cores, and an engine sizes itself from the cores it may run on: each would start one
  engine worker per core of the machine. ``STT_ENGINE_WORKERS=1`` and ``STT_CPU_THREADS`` (the actor's CPUs) go to
  the actors through ``runtime_env={"env_vars": ...}``, with the driver's other ``STT_*`` and Hugging Face
  settings, so every actor builds the transcriber this machine's settings describe.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..manifest import Item
from .base import Done, ExecutorStats, Failed, GaveUp, Outcome

PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
RESERVED_CPUS = 0.5
"""Logical CPUs of the cluster the actors leave to Ray Data's own tasks (ray #44687)."""
BATCH_ITEMS = 2
"""Items per batch: what a killed actor makes the pool do again, and what an actor overlaps (one item's audio
decoded while another's is transcribed)."""
MAX_TASK_RETRIES = 3
"""Times a batch is sent again after its actor died; past that it is dropped and its items left for the next run."""
MAX_ATTEMPTS_VARIABLE = "BULK_RAY_MAX_ATTEMPTS"
"""How the actors learn ``RayOptions.max_attempts``: with the rest of their environment, so the actor class takes
no constructor arguments."""
PASSED_ENVIRONMENT_PREFIXES = ("STT_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None
    """An existing cluster (``ray://host:10001``, ``host:6379`` or ``auto``); None: start a local one."""
    workers: int = 2
    """Actors in the pool."""
    cpus_per_worker: float = 1.0
    """Cores each actor's engine uses (its ``STT_CPU_THREADS``)."""
    gpus_per_worker: float = 0.0
    """GPUs each actor holds (0: a CPU node; 1, or 0.5 for two actors on one GPU)."""
    max_attempts: int = 5
    """Tries per item on an overloaded or unavailable model (the inprocess executor's retries)."""


def ray_environment(environ: Mapping[str, str], options: RayOptions) -> dict[str, str]:
    """The environment the actors get: the driver's ``STT_*`` and Hugging Face settings, one engine worker with the
    actor's cores as threads, the project on ``PYTHONPATH``, OpenMP threads that sleep when idle."""
    passed = {key: value for key, value in environ.items() if key.startswith(PASSED_ENVIRONMENT_PREFIXES)}
    threads = max(1, math.floor(options.cpus_per_worker))
    return {
        **passed,
        "STT_ENGINE_WORKERS": "1",
        "STT_CPU_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "OMP_WAIT_POLICY": "PASSIVE",
        "OPENBLAS_NUM_THREADS": "1",
        MAX_ATTEMPTS_VARIABLE: str(options.max_attempts),
        "PYTHONPATH": os.pathsep.join(p for p in (PROJECT_ROOT, environ.get("PYTHONPATH", "")) if p),
    }


def actor_cpus(options: RayOptions, cluster_cpus: float) -> float:
    """The ``num_cpus`` each actor asks Ray for: its cores, scaled down (fractional) when the pool would otherwise
    take the whole cluster and leave Ray Data's own tasks no CPU (ray #44687)."""
    wanted = options.cpus_per_worker
    room = (cluster_cpus - RESERVED_CPUS) / options.workers
    if room <= 0:
        raise ValueError(f"a cluster of {cluster_cpus:g} CPUs has no room for {options.workers} actors")
    return round(min(wanted, room), 3)


def actor_options(options: RayOptions, cluster_cpus: float, environ: Mapping[str, str]) -> dict[str, Any]:
    """``map_batches``'s actor arguments but the pool itself: resources, environment and fault tolerance.

    Ray Data 2.60 would restart actors and retry their tasks without end (``max_restarts=-1``,
    ``max_task_retries=-1``); the retries are bounded here, so a batch that kills every actor it meets ends. Both
    go through ``ray_remote_args``, which Ray announces it will remove in 2.64 (hence the pinned version)."""
    resources: dict[str, Any] = {"num_cpus": actor_cpus(options, cluster_cpus)}
    if options.gpus_per_worker > 0:
        resources["num_gpus"] = options.gpus_per_worker
    return {
        "batch_size": BATCH_ITEMS,
        "batch_format": "numpy",
        "runtime_env": {"env_vars": ray_environment(environ, options)},
        "max_restarts": -1,  # a killed actor is always replaced
        "max_task_retries": MAX_TASK_RETRIES,  # and its batch sent again
        **resources,
    }


def import_ray() -> Any:
    """Ray, imported here only (an optional extra: ``requirements-ray.txt``), after the switches that must be set
    before it starts; a clear error where it is not installed."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise SystemExit("--executor ray needs Ray: pip install -r requirements-ray.txt") from exc
    return ray


def start_local_ray(ray: Any, cpus: int) -> None:
    """A one-machine Ray bound to 127.0.0.1, without dashboard or usage statistics, with ``cpus`` CPUs, its workers
    at the runner's priority (nice 0, not Ray's 15)."""
    if ray.is_initialized():
        return
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when Ray starts its servers: keep the loopback
    # address instead of the machine's primary one
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # the same switch, for a Ray imported before it was set
    ray.init(num_cpus=cpus, _node_ip_address=LOOPBACK, include_dashboard=False, log_to_driver=False,
             configure_logging=False, _system_config={"worker_niceness": 0})
    if ray.util.get_node_ip_address() != LOOPBACK:
        ray.shutdown()
        raise RuntimeError("the local Ray is not bound to 127.0.0.1: this Ray version ignores the switch")


class BulkTranscriber:
    """One actor of the pool: the project's transcriber built once (``build_transcriber_from_settings``, from the
    ``STT_*`` environment the actor was given), its batches run through the inprocess executor, each outcome
    returned as plain columns."""

    def __init__(self, transcriber: Any = None) -> None:
        from .inprocess import InprocessExecutor, build_transcriber_from_settings

        self.executor = InprocessExecutor(transcriber or build_transcriber_from_settings(), concurrency=BATCH_ITEMS,
                                          max_attempts=int(os.environ.get(MAX_ATTEMPTS_VARIABLE, "5")))
        self.executor.worker = f"ray:{os.uname().nodename}:{os.getpid()}"

    def __call__(self, batch: Mapping[str, Sequence[str]]) -> dict[str, list[Any]]:
        return outcome_columns(self.executor.run(batch_items(batch)))


OUTCOME_COLUMNS = ("id", "kind", "worker", "attempts", "text", "audio_s", "model", "response", "status", "error",
                   "reason")


def batch_items(batch: Mapping[str, Sequence[str]]) -> list[Item]:
    """The items of a batch as the driver sent them (one JSON string each)."""
    return [Item.model_validate_json(line) for line in batch["item"]]


def outcome_columns(outcomes: Iterable[Outcome]) -> dict[str, list[Any]]:
    """A batch's outcomes as the columns of the block an actor returns."""
    rows = [outcome_row(outcome) for outcome in outcomes]
    return {column: [row[column] for row in rows] for column in OUTCOME_COLUMNS}


def outcome_row(outcome: Outcome) -> dict[str, Any]:
    """An outcome as plain columns (strings and numbers: what a Ray Data block holds); ``outcome_from_row``
    reverses it."""
    row: dict[str, Any] = {"id": outcome.item.id, "kind": type(outcome).__name__, "worker": "", "attempts":
                           outcome.attempts, "text": "", "audio_s": 0.0, "model": "", "response": "", "status": -1,
                           "error": "", "reason": ""}
    if isinstance(outcome, Done):
        row.update(worker=outcome.worker, text=outcome.text, audio_s=float(outcome.audio_s),
                   model=outcome.model or "", response=json.dumps(outcome.response, ensure_ascii=False))
    elif isinstance(outcome, Failed):
        row.update(worker=outcome.worker, status=-1 if outcome.status is None else outcome.status,
                   error=json.dumps(outcome.error, ensure_ascii=False))
    else:
        row.update(reason=outcome.reason)
    return row


def outcome_from_row(item: Item, row: Mapping[str, Any]) -> Outcome:
    attempts = int(row["attempts"])
    if row["kind"] == "Done":
        return Done(item, json.loads(row["response"]), str(row["text"]), float(row["audio_s"]), str(row["worker"]),
                    model=str(row["model"]) or None, attempts=attempts)
    if row["kind"] == "Failed":
        status = int(row["status"])
        return Failed(item, None if status < 0 else status, json.loads(row["error"]), str(row["worker"]), attempts)
    return GaveUp(item, str(row["reason"]), attempts)


class RayExecutor:
    name = "ray"

    def __init__(self, options: RayOptions = RayOptions(), actor: Callable[[], Any] = BulkTranscriber) -> None:
        self.options = options
        self.actor = actor
        """The pool's actor class: ``BulkTranscriber``, or a test's stand-in."""
        self.stats = ExecutorStats()
        self._ray: Any = None

    def run(self, items: Sequence[Item]) -> Iterator[Outcome]:
        if not items:
            return
        ray = self._connect()
        from ray.data import ActorPoolStrategy, DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False  # the runner has its own
        context.print_on_execution_start = False
        context.max_errored_blocks = -1  # a batch that outlived its retries: its items are left for the next run
        by_id = {item.id: item for item in items}
        cluster_cpus = float(ray.cluster_resources().get("CPU", 0))
        arguments = actor_options(self.options, cluster_cpus, os.environ)
        dataset = ray.data.from_items([{"item": item.model_dump_json()} for item in items],
                                      override_num_blocks=max(1, math.ceil(len(items) / BATCH_ITEMS)))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")  # see actor_options
            outputs = dataset.map_batches(self.actor, compute=ActorPoolStrategy(size=self.options.workers),
                                          **arguments)
        seen: set[str] = set()
        for row in outputs.iter_rows():
            item = by_id.get(row["id"])
            if item is None or item.id in seen:
                continue  # never expected: a batch is returned once, but one id must never give two outcomes
            seen.add(item.id)
            outcome = outcome_from_row(item, row)
            self._count(outcome)
            yield outcome
        for item in items:
            if item.id not in seen:
                yield GaveUp(item, "its batch failed on every retry (see the Ray logs)")

    def close(self) -> None:
        """Shut the local Ray down; from a cluster joined with ``--address``, only disconnect (it goes on)."""
        if self._ray is not None:
            self._ray.shutdown()
        self._ray = None

    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        if self.options.address:
            ray.init(address=self.options.address, log_to_driver=False, configure_logging=False)
        else:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            start_local_ray(ray, cores)
        self._ray = ray
        return ray

    def _count(self, outcome: Outcome) -> None:
        self.stats.retries += outcome.attempts - 1
        if isinstance(outcome, Done):
            if outcome.worker not in self.stats.per_worker and len(self.stats.per_worker) >= self.options.workers:
                self.stats.events.append(f"{outcome.worker} joined the pool (a replacement for a lost actor)")
            self.stats.per_worker[outcome.worker] = self.stats.per_worker.get(outcome.worker, 0) + 1

