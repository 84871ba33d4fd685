"""Soak test: many requests alternating between models, watching memory, loads and temp files.

    .venv/bin/python -m bench.soak --requests 1000 --concurrency 4

Starts a real ``bentoml serve`` with a registry of two models (the embedded tiny.en in int8 and a second
copy of it in float32, or ``--models`` of your own registry), sends N requests alternating between them,
in waves of 100, reporting the server's resident memory (process tree RSS; GPU memory when there is one)
between waves, when no request is in flight. Acceptance: memory growth under 5% from request 100 to N, exactly one load per model when the
budget fits both, no temp file left behind.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import yaml

from bench.corpus import audio_dir, english_short_utterances
from bench.server import ROOT, RunningServer, metric_total, running_server

DEFAULT_MODELS = ("tiny-en", "tiny-en-fp32")
MAX_GROWTH = 0.05


def soak_registry(directory: Path) -> Path:
    registry = yaml.safe_load((ROOT / "models.yaml").read_text())
    registry["models"].append(
        {"id": "tiny-en-fp32", "engine": "ctranslate2", "model": "embedded:tiny.en", "dtype": "float32"}
    )
    path = directory / "models.yaml"
    path.write_text(yaml.safe_dump(registry))
    return path


def tree_rss_bytes(pid: int) -> int:
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def gpu_used_bytes() -> int | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:
        return None


def run(server: RunningServer, models: list[str], requests: int, concurrency: int, files: list[Path], every: int) -> int:
    plan = list(zip(range(requests), itertools.cycle(models), itertools.cycle(files)))
    samples: list[tuple[int, int, int | None]] = []
    failures = 0
    started = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=600, limits=httpx.Limits(max_connections=concurrency)) as http:

        def send(item: tuple[int, str, Path]) -> int:
            _, model, path = item
            with path.open("rb") as f:
                return http.post("/transcribe", files={"file": (path.name, f)}, data={"model_id": model}).status_code

        # Requests go in waves of `every` at full concurrency; memory is sampled between waves, when no request
        # is in flight, so every sample is taken in the same state (in-flight buffers would add noise).
        with ThreadPoolExecutor(concurrency) as pool:
            for wave_start in range(0, requests, every):
                statuses = list(pool.map(send, plan[wave_start : wave_start + every]))
                failures += sum(status != 200 for status in statuses)
                done = wave_start + len(statuses)
                samples.append((done, tree_rss_bytes(server.process.pid), gpu_used_bytes()))
                rss_mib = samples[-1][1] / 2**20
                gpu = f", GPU {samples[-1][2] / 2**20:.0f} MiB" if samples[-1][2] is not None else ""
                print(f"request {done:5d}: RSS {rss_mib:7.1f} MiB{gpu}, failures {failures}", flush=True)
        metrics = http.get("/metrics").text
    elapsed = time.monotonic() - started

    loads = {m: metric_total(metrics, "stt_model_loads_total", model=m) for m in models}
    leftovers = server.wait_for_leftovers([])
    reference = samples[0][1]  # after the first wave: warm-up done
    growth = (samples[-1][1] - reference) / reference
    gpu_ref = samples[0][2]
    gpu_growth = (samples[-1][2] - gpu_ref) / gpu_ref if gpu_ref else None

    print(f"\n{requests} requests, concurrency {concurrency}, models {', '.join(models)}: {elapsed:.0f} s")
    print(f"RSS growth from request {samples[0][0]} to {requests}: {growth * 100:+.2f}% (limit {MAX_GROWTH * 100:.0f}%)")
    if gpu_growth is not None:
        print(f"GPU memory growth from request {samples[0][0]} to {requests}: {gpu_growth * 100:+.2f}%")
    print(f"loads per model: {loads}")
    print(f"failed requests: {failures}; leftover temp files: {len(leftovers)}")
    checks = {
        "memory growth < 5%": growth < MAX_GROWTH and (gpu_growth is None or gpu_growth < MAX_GROWTH),
        "one load per model": all(count == 1 for count in loads.values()),
        "no leftover temp files": not leftovers,
        "no failed requests": failures == 0,
    }
    for name, passed in checks.items():
        print(f"  {'PASS' if passed else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--every", type=int, default=100, help="requests between memory samples")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated registry ids")
    parser.add_argument("--registry", type=Path, help="registry file (default: shipped one plus tiny-en-fp32)")
    args = parser.parse_args()

    files = [u.path for u in english_short_utterances(audio_dir()) if u.duration_s <= 8]
    if not files:
        print(f"no corpus at {audio_dir()}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        registry = args.registry or soak_registry(Path(tmp))
        with running_server({"STT_REGISTRY_PATH": str(registry)}) as server:
            return run(server, args.models.split(","), args.requests, args.concurrency, files, args.every)


if __name__ == "__main__":
    sys.exit(main())
