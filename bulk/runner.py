"""One bulk run: read the manifest, skip what is finished (the resume rule of ``bulk.outputs``), run the rest on an
executor and record each outcome the moment it arrives."""

from __future__ import annotations

import time
from pathlib import Path

from .executors.base import Done, Executor, Failed, GaveUp
from .manifest import read_manifest
from .outputs import Outputs, RunDefaults
from .progress import Progress
from .sharding import Shard
from .summary import Summary, summary_name


def run_bulk(
    manifest: Path, out: Path, executor: Executor, defaults: RunDefaults = RunDefaults(), progress: bool = True,
    shard: Shard | None = None,
) -> Summary:
    """Run every unfinished item of ``manifest`` (of its ``shard`` only, when given) on ``executor`` into ``out``;
    the summary is also written there (``summary.json``, or the shard's own file), and ``failures.jsonl`` rebuilt."""
    items = [defaults.apply(item) for item in read_manifest(manifest)]
    if shard is not None:
        items = shard.select(items)
    outputs = Outputs(out)
    summary = Summary(executor.name, items=len(items))
    summary.removed_temporaries = len(outputs.remove_leftover_temporaries())
    pending = outputs.pending(items)
    summary.skipped = len(items) - len(pending)
    bar = Progress(len(pending), enabled=progress)
    started = time.monotonic()
    try:
        for outcome in executor.run(pending):
            if isinstance(outcome, Done):
                outputs.write_result(outcome.item, {
                    "executor": executor.name, "worker": outcome.worker, "model": outcome.model,
                    "text": outcome.text, "audio_s": outcome.audio_s, "attempts": outcome.attempts,
                    "response": outcome.response,
                })
                summary.done += 1
                summary.audio_s += outcome.audio_s
                bar.advance(audio_s=outcome.audio_s, retries=executor.stats.retries)
            elif isinstance(outcome, Failed):
                summary.failed += outputs.record_failure(outcome.item, outcome.status, outcome.error)
                bar.advance(failed=True, retries=executor.stats.retries)
            elif isinstance(outcome, GaveUp):
                summary.gave_up += 1
                summary.events.append(f"left {outcome.item.id!r} for the next run: {outcome.reason}")
                bar.advance(gave_up=True, retries=executor.stats.retries)
    finally:
        bar.close()
        summary.wall_s = time.monotonic() - started
        summary.retries = executor.stats.retries
        summary.per_worker = dict(executor.stats.per_worker)
        summary.events = [*executor.stats.events, *summary.events]
        outputs.rebuild_failures_index()
        summary.write(out, summary_name(shard))
    return summary
