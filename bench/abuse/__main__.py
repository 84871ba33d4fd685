"""``python -m bench.abuse [--cases NAME ...]``: every case against one real server with API keys set; a table of
the statuses, the server's peak memory above its level before the case, and the CPU time it cost."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.corpus import audio_dir
from bench.server import running_server

from .case import Case, Target
from .probe import MemoryProbe

API_KEY = "sk-abuse"
CASE_MODULES: tuple[str, ...] = ("memory", "admission", "socket", "text")
"""The modules of this package that hold cases (each a ``CASES`` list), in the order they run."""


def all_cases() -> list[Case]:
    import importlib

    return [case for name in CASE_MODULES for case in importlib.import_module(f"{__package__}.{name}").CASES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", nargs="*", help="names of the cases to run (default: all)")
    args = parser.parse_args()
    cases = [c for c in all_cases() if not args.cases or c.name in args.cases]
    with tempfile.TemporaryDirectory() as work, running_server({"STT_API_KEYS": API_KEY}) as server:
        target = Target(server.url, API_KEY, audio_dir(), Path(work))
        print("| case | target | answered | peak RSS above start (MB) | CPU (s) | wall (s) | notes |")
        print("|---|---|---|---|---|---|---|")
        for case in cases:
            MemoryProbe.settle()
            started = time.monotonic()
            with MemoryProbe(server.process.pid) as probe:
                outcome = case.run(target)
            answered = ", ".join(f"{status} x{n}" for status, n in Counter(outcome.statuses).items())
            print(
                f"| {case.name} | {case.target} | {answered} | {probe.peak_above_start_mb:.0f} | {probe.cpu_s:.1f} | "
                f"{time.monotonic() - started:.1f} | {outcome.notes} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
