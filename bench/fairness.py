"""Head-of-line blocking: how long a short request takes when it arrives behind a long file.

    .venv/bin/python -m bench.fairness [--repeats 3] [--long-seconds 310]

Against a real server with the embedded default model: the short request's latency alone (the baseline, in the
same run), then its latency when sent one second after a long file started, repeated. Prints min / median / max
of both and of their ratio. The target: behind the long file, within about three times the solo latency.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.corpus import audio_dir, english_short_utterances
from bench.server import running_server
from bench.throughput import long_file, post


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-seconds", type=float, default=310.0)
    args = parser.parse_args()

    utterances = english_short_utterances(audio_dir())
    if not utterances:
        print(f"no corpus at {audio_dir()}", file=sys.stderr)
        return 2
    short = min(utterances, key=lambda u: abs(u.duration_s - 3.0))
    with tempfile.TemporaryDirectory() as tmp, running_server() as server, \
            httpx.Client(base_url=server.url, timeout=1800) as http:
        long_path, _, long_audio_s = long_file(utterances, Path(tmp), args.long_seconds)
        post(http, short.path)  # warm-up
        alone = [post(http, short.path)[0] for _ in range(args.repeats)]
        behind, long_times = [], []
        for _ in range(args.repeats):
            done: list[float] = []
            worker = threading.Thread(target=lambda: done.append(post(httpx.Client(base_url=server.url, timeout=1800),
                                                                      long_path)[0]))
            worker.start()
            time.sleep(1.0)
            behind.append(post(http, short.path)[0])
            worker.join()
            long_times.append(done[0])
    ratios = [b / statistics.median(alone) for b in behind]
    print(f"short request: {short.duration_s:.1f} s of audio; long file: {long_audio_s:.0f} s of audio")
    print(f"short alone (s), min / median / max: {spread(alone)}")
    print(f"short behind the long file (s): {spread(behind)}; ratio to the solo median: {spread(ratios)} (target <= 3)")
    print(f"long file (s): {spread(long_times)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
