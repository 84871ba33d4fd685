"""``python -m bulk run MANIFEST --out DIR --executor http --server URL [--server URL ...]`` (or ``--executor
inprocess``, ``--executor ray [--address ADDR] [--workers N]`` or ``--executor slurm``): transcribe every item of a
JSONL manifest into one file per id under DIR; run it again to resume. ``python -m bulk status MANIFEST --out DIR``:
where a run stands, from the folder alone.

Exit status: 0 when every item has its result or its recorded failure, 1 when some were left for the next run
(transient failures past the retries), 2 for a manifest that cannot be run, 3 when the run was aborted (a 401/403: a
wrong or missing API key; for slurm, sbatch refused the job or is missing), 130 when it was interrupted (Ctrl-C or
SIGTERM: what finished is kept)."""

from __future__ import annotations

import os

# As service.py does, before any engine loads its OpenMP runtime (the inprocess executor runs the engines here):
# idle OpenMP and OpenBLAS threads spinning after each call take cores from the engine workers.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from .executors.base import Executor  # noqa: E402
from .executors.http import API_KEY_VARIABLES, HttpExecutor, HttpOptions, RunAborted  # noqa: E402
from .manifest import ManifestError  # noqa: E402
from .outputs import RunDefaults  # noqa: E402
from .runner import run_bulk  # noqa: E402
from .sharding import Shard  # noqa: E402


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bulk", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) a manifest")
    run.add_argument("manifest", type=Path, help="JSONL: one {id, audio, [model, language, task, response_format, "
                     "diarize, num_speakers, prompt]} per line")
    run.add_argument("--out", type=Path, required=True, help="output folder (results/, failures.jsonl, summary.json)")
    run.add_argument("--executor", choices=("http", "inprocess", "ray", "slurm"), default="http")
    run.add_argument("--server", action="append", default=[], help="a replica's URL (repeat for more); http only")
    run.add_argument("--model", help="model for items that name none (default: the server's default)")
    run.add_argument("--response-format", default="verbose_json", help="format for items that name none")
    run.add_argument("--per-replica-inflight", type=int, default=2, help="requests in flight per replica (http)")
    run.add_argument("--max-attempts", type=int, default=30, help="tries per item before leaving it for the next run")
    run.add_argument("--request-timeout", type=float, default=3600.0, help="seconds per request (http)")
    run.add_argument("--concurrency", type=int, default=0, help="items in flight (inprocess); 0: one per core")
    run.add_argument("--max-audio-bytes", type=int, default=100 * 2**20, help="largest audio file read or fetched")
    ray = run.add_argument_group("ray", "--executor ray (the optional extra: requirements-ray.txt)")
    ray.add_argument("--address", help="join this Ray cluster (default: start a local one on 127.0.0.1)")
    ray.add_argument("--workers", type=int, default=2, help="actors in the pool")
    ray.add_argument("--cpus-per-worker", type=float, default=1.0, help="cores each actor's engine uses")
    ray.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs each actor holds (0: CPU nodes)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--shard", type=_shard, help="I/N: only the items whose sha256(id) mod N is I (an array task)")
    slurm = run.add_argument_group("slurm", "--executor slurm: a job array, each task the inprocess executor on its "
                                   "shard (docs/bulk.md)")
    slurm.add_argument("--tasks", type=int, default=4, help="array tasks: the manifest's shards (keep it per folder)")
    slurm.add_argument("--partition", help="the partition to submit to (default: the cluster's)")
    slurm.add_argument("--gpus-per-task", type=int, default=0, help="GPUs per array task (0: CPU)")
    slurm.add_argument("--cpus-per-task", type=int, default=1, help="CPUs per array task (its engine workers)")
    slurm.add_argument("--array-parallelism", type=int, default=0, help="tasks running at once (%%K); 0: no bound")
    slurm.add_argument("--time", help="time limit per task (sbatch --time)")
    slurm.add_argument("--max-resubmits", type=int, default=2,
                       help="times a shard is submitted again after its task ended with items pending")
    slurm.add_argument("--no-wait", action="store_true", help="submit and return (then: python -m bulk status)")
    status = commands.add_parser("status", help="done / failed / pending, from the output folder alone")
    status.add_argument("manifest", type=Path)
    status.add_argument("--out", type=Path, required=True)
    status.add_argument("--model", help="as given to run")
    status.add_argument("--response-format", default="verbose_json", help="as given to run")
    status.add_argument("--tasks", type=int, help="also list the pending items per shard of this many")
    return parser


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def make_executor(args: argparse.Namespace) -> Executor:
    if args.executor == "http":
        if not args.server:
            raise SystemExit("--executor http needs at least one --server URL")
        return HttpExecutor(HttpOptions(
            servers=args.server, per_replica_inflight=args.per_replica_inflight, max_attempts=args.max_attempts,
            request_timeout_s=args.request_timeout, max_audio_bytes=args.max_audio_bytes,
        ))
    if args.executor == "ray":
        from .executors.ray import RayExecutor, RayOptions

        return RayExecutor(RayOptions(address=args.address, workers=args.workers,
                                      cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
                                      max_attempts=min(args.max_attempts, 5)))
    from .executors.inprocess import InprocessExecutor, build_transcriber_from_settings

    return InprocessExecutor(build_transcriber_from_settings(), concurrency=args.concurrency or None,
                             max_attempts=min(args.max_attempts, 5), max_audio_bytes=args.max_audio_bytes)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def status(args: argparse.Namespace) -> int:
    from .manifest import read_manifest
    from .outputs import Outputs
    from .status import folder_status

    defaults = RunDefaults(args.model, args.response_format)
    try:
        items = [defaults.apply(item) for item in read_manifest(args.manifest)]
    except ManifestError as exc:
        print(f"The manifest cannot be read:\n{exc}", file=sys.stderr)
        return 2
    found = folder_status(Outputs(args.out), items)
    print(found.render(args.tasks))
    return 0 if found.complete else 1


def slurm(args: argparse.Namespace) -> int:
    from .launchers.slurm import SlurmError, SlurmOptions, launch

    passed_on = ["--response-format", args.response_format, "--max-attempts", str(args.max_attempts),
                 "--max-audio-bytes", str(args.max_audio_bytes), *(["--model", args.model] if args.model else [])]
    options = SlurmOptions(
        tasks=args.tasks, partition=args.partition, gpus_per_task=args.gpus_per_task,
        cpus_per_task=args.cpus_per_task, array_parallelism=args.array_parallelism, time_limit=args.time,
        max_resubmits=args.max_resubmits, wait=not args.no_wait, run_args=tuple(passed_on),
    )
    try:
        summary = launch(args.manifest, args.out, options, RunDefaults(args.model, args.response_format),
                         progress=not args.no_progress)
    except ManifestError as exc:
        print(f"The manifest cannot be run:\n{exc}", file=sys.stderr)
        return 2
    except SlurmError as exc:
        print(f"Slurm: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("Interrupted: the submitted tasks go on (python -m bulk status; scancel to stop them).", file=sys.stderr)
        return 130
    print(summary.render())
    return 0 if summary.complete or args.no_wait else 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "status":
        return status(args)
    signal.signal(signal.SIGTERM, _interrupt)  # stop as Ctrl-C does: the results written so far are whole
    if args.executor == "slurm":
        return slurm(args)
    executor = make_executor(args)
    try:
        summary = run_bulk(args.manifest, args.out, executor, RunDefaults(args.model, args.response_format),
                           progress=not args.no_progress, shard=args.shard)
    except ManifestError as exc:
        print(f"The manifest cannot be run:\n{exc}", file=sys.stderr)
        return 2
    except RunAborted as exc:
        print(f"Aborted: {exc} (the key is read from {' or '.join(API_KEY_VARIABLES)})", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("Interrupted: run the same command again to resume.", file=sys.stderr)
        return 130
    finally:
        executor.close()
    print(summary.render())
    return 0 if summary.complete else 1


if __name__ == "__main__":
    sys.exit(main())
