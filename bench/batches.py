"""The Batch API's throughput against the bulk runner's, on one replica on both cores, for the same files.

    .venv/bin/python -m bench.batches [--items 40] [--repeats 3] [--inflight 3] [--workers 1 3]

Every configuration transcribes the same ``--items`` files (the English short utterances of the corpus, repeated):
the bulk runner (``python -m bulk run --executor http``, ``--inflight`` requests in flight: the baseline) and a
batch of as many lines for each ``STT_JOBS_WORKERS`` in ``--workers`` (one replica each, all started before the
first run; the configurations take turns within each repeat). A batch's time runs from ``batches.create`` until
``retrieve`` says ``completed`` (polled every 0.1 s), its audio uploaded once beforehand (the bulk runner sends each
file with its request). Reported as min / median / max of audio seconds per second of wall time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import openai

from bench.bulk import run_once, spread, write_manifest
from bench.corpus import Utterance, audio_dir, english_short_utterances
from bench.server import RunningServer, running_server

TRANSCRIPTIONS = "/v1/audio/transcriptions"


def batch_run(sdk: openai.OpenAI, file_ids: list[str], utterances: list[Utterance], items: int) -> float:
    """One batch of ``items`` lines over the uploaded files: audio seconds per second of wall time."""
    lines = [{"custom_id": f"{n:05d}", "method": "POST", "url": TRANSCRIPTIONS, "body": {"file": file_id}}
             for n, file_id in zip(range(items), itertools.cycle(file_ids))]
    batch_input = sdk.files.create(file=("in.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
                                   purpose="batch")
    audio_s = sum(u.duration_s for u, _ in zip(itertools.cycle(utterances), range(items)))
    started = time.perf_counter()
    batch = sdk.batches.create(input_file_id=batch_input.id, endpoint=TRANSCRIPTIONS, completion_window="24h")
    while (batch := sdk.batches.retrieve(batch.id)).status not in ("completed", "failed", "cancelled", "expired"):
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    counts = batch.request_counts
    if batch.status != "completed" or counts is None or counts.completed != items:
        raise RuntimeError(f"batch {batch.status}: {counts}")
    return audio_s / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inflight", type=int, default=3, help="the bulk runner's requests in flight")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3], help="STT_JOBS_WORKERS of each batch run")
    args = parser.parse_args()
    utterances = english_short_utterances(audio_dir())
    if not utterances:
        print(f"no corpus at {audio_dir()}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-batches-") as directory, ExitStack() as stack:
        work = Path(directory)
        manifest = write_manifest(work / "manifest.jsonl", utterances, args.items, bad_entries=False)
        warm_up = write_manifest(work / "warm-up.jsonl", utterances, 4, bad_entries=False)
        audio_s = sum(u.duration_s for u, _ in zip(itertools.cycle(utterances), range(args.items)))
        print(f"{args.items} items, {audio_s:.0f} s of audio (English short utterances); {os.cpu_count()} cores; "
              f"load average before: {os.getloadavg()[0]:.2f}; audio s/s min / median / max over {args.repeats} runs",
              flush=True)
        servers: dict[int, RunningServer] = {}
        for workers in args.workers:
            env = {"STT_DEVICE": "cpu", "STT_JOBS_DIR": str(work / f"jobs-{workers}"), "STT_JOBS_POLL_S": "0.1",
                   "STT_JOBS_WORKERS": str(workers)}
            servers[workers] = stack.enter_context(running_server(env))
        clients = {w: openai.OpenAI(base_url=f"{s.url}/v1", api_key="x", max_retries=0, timeout=120)
                   for w, s in servers.items()}
        file_ids = {w: [sdk.files.create(file=u.path, purpose="user_data").id for u in utterances]
                    for w, sdk in clients.items()}
        baseline = servers[args.workers[0]]
        run_once([baseline], warm_up.path, work, args.inflight)
        for workers, sdk in clients.items():
            batch_run(sdk, file_ids[workers], utterances, 4)
        names = [f"bulk runner, {args.inflight} in flight (baseline)"] + [
            f"batch, STT_JOBS_WORKERS={w}" for w in args.workers]
        speeds: dict[str, list[float]] = {name: [] for name in names}
        for repeat in range(args.repeats):
            speeds[names[0]].append(run_once([baseline], manifest.path, work, args.inflight))
            for name, (workers, sdk) in zip(names[1:], clients.items(), strict=True):
                speeds[name].append(batch_run(sdk, file_ids[workers], utterances, args.items))
            print(f"repeat {repeat + 1}: " + ", ".join(f"{v[-1]:.1f}" for v in speeds.values()), flush=True)
        print("| configuration | audio s/s (min / median / max) |\n|---|---|")
        for name, values in speeds.items():
            print(f"| {name} | {spread(values)} |")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
