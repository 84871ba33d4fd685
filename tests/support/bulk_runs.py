"""What the bulk runner's end-to-end modules check of a run: every id exactly once, and how they kill a runner."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from bench.bulk import Manifest, failures, failures_index, results, temporaries


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    os.killpg(process.pid, sig)
    process.wait(30)


def check_exactly_once(out: Path, manifest: Manifest) -> dict[str, dict]:
    """Every good id has exactly one result file, no temporary file is left, each bad id is recorded once (one failure
    file, and one line of the failures.jsonl index); the results by id."""
    written = results(out)  # raises on two files for one id
    assert sorted(written) == sorted(manifest.good_ids)
    assert temporaries(out) == []
    failed = [entry["id"] for entry in failures(out)]
    assert sorted(failed) == sorted(manifest.bad_ids)  # each once
    assert failures_index(out) == failures(out)  # the index, rebuilt at the end of the run, lists them all
    return written
