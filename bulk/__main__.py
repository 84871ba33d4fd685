"""``python -m bulk run MANIFEST --out DIR --executor http --server URL [--server URL ...]`` (or ``--executor
inprocess``, or ``--executor ray [--address ADDR] [--workers N]``): transcribe every item of a JSONL manifest into one file per id under DIR; run it again to resume.

Exit status: 0 when every item has its result or its recorded failure, 1 when some were left for the next run
(transient failures past the retries), 2 for a manifest that cannot be run, 3 when the run was aborted (a 401/403: a
wrong or missing API key), 130 when it was interrupted (Ctrl-C or SIGTERM: what finished is kept)."""

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


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bulk", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) a manifest")
    run.add_argument("manifest", type=Path, help="JSONL: one {id, audio, [model, language, task, response_format, "
                     "diarize, num_speakers, prompt]} per line")
    run.add_argument("--out", type=Path, required=True, help="output folder (results/, failures.jsonl, summary.json)")
    run.add_argument("--executor", choices=("http", "inprocess", "ray"), default="http")
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
    return parser


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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop as Ctrl-C does: the results written so far are whole
    executor = make_executor(args)
    try:
        summary = run_bulk(args.manifest, args.out, executor, RunDefaults(args.model, args.response_format),
                           progress=not args.no_progress)
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
