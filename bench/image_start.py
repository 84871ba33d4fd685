"""Cold start and memory of the built images, against `bentoml serve` from the source as the baseline, in one run.

    .venv/bin/python -m bench.image_start [--images speech-to-text:gpu,speech-to-text:cpu] [--repeats 3]

Each repetition starts each arm afresh, in turn (so that drift in the machine's load hits all alike): the images
as users run them (`docker run` on the host's network, read-only root, a tmpfs for /tmp, a new named volume for
the Hugging Face cache, bound to 127.0.0.1), the baseline as `bench.server.running_server` runs it. It measures
the seconds from start until /readyz answers 200 (the preloaded model, tiny.en, in memory), the memory after
transcribing the JFK clip and diarizing a 30 s call (the resident memory of the server's processes, summed, for
every arm: tiny.en and the diarizer loaded),
and the seconds `docker stop` takes (SIGTERM; the server drains and unloads its models). It prints min / median /
max of each. Build the images first (`make image`, `make image VARIANT=cpu`).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import httpx
import psutil

from bench.containers import docker, running_container
from bench.corpus import audio_dir
from bench.server import running_server
from bench.throughput import spread

JFK = "en/jfk_inaugural_1961_excerpt.flac"
CALL = "multi/pyannote_sample.wav"


def transcribe_and_diarize(url: str) -> None:
    """The JFK clip transcribed, then a 30 s two-party call diarized (which loads the diarizer)."""
    for path, response_format in ((JFK, "json"), (CALL, "diarized_json")):
        with (audio_dir() / path).open("rb") as f:
            response = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": f},
                                  data={"model": "whisper-1", "response_format": response_format}, timeout=600)
        response.raise_for_status()


def rss_mib(pids: list[int]) -> float:
    """Resident memory of the server's processes, summed (as the baseline's process tree is)."""
    return sum(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20


def container_pids(name: str) -> list[int]:
    """The container's processes as this machine sees them (Docker's `top` answers in the host's PID space)."""
    return [int(line.split()[0]) for line in docker("top", name, "-eo", "pid").stdout.splitlines()[1:]]


def image_run(image: str) -> tuple[float, float, float]:
    volume = f"bench-hf-cache-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", volume)
    try:
        started = time.monotonic()
        with running_container(image, volume) as container:
            container.wait_until_ready()
            ready_s = time.monotonic() - started
            transcribe_and_diarize(container.url)
            memory = rss_mib(container_pids(container.name))
            stopping = time.monotonic()
            docker("stop", "-t", "30", container.name, timeout=90)
            return ready_s, memory, time.monotonic() - stopping
    finally:
        docker("volume", "rm", "-f", volume, check=False)


def baseline_run() -> tuple[float, float, float]:
    started = time.monotonic()
    with running_server() as server:
        ready_s = time.monotonic() - started
        transcribe_and_diarize(server.url)
        root = psutil.Process(server.process.pid)
        memory = rss_mib([root.pid, *(child.pid for child in root.children(recursive=True))])
        stopping = time.monotonic()
    return ready_s, memory, time.monotonic() - stopping


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="speech-to-text:gpu,speech-to-text:cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (audio_dir() / JFK).is_file():
        print(f"no corpus at {audio_dir()}", file=sys.stderr)
        return 2
    arms = {"bentoml serve (source)": baseline_run}
    arms.update({image: (lambda image=image: image_run(image)) for image in args.images.split(",")})
    results: dict[str, list[tuple[float, float, float]]] = {arm: [] for arm in arms}
    for repeat in range(args.repeats):
        for arm, run in arms.items():
            results[arm].append(run())
            print(f"[{repeat + 1}/{args.repeats}] {arm}: ready {results[arm][-1][0]:.1f} s, "
                  f"{results[arm][-1][1]:.0f} MiB, stop {results[arm][-1][2]:.1f} s", flush=True)
    print(f"\n{'arm':28} {'ready s (min/med/max)':24} {'memory MiB':24} {'stop s':18}")
    for arm, runs in results.items():
        ready, memory, stop = zip(*runs)
        print(f"{arm:28} {spread(list(ready)):24} {spread(list(memory), 0):24} {spread(list(stop)):18}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
