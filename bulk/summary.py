"""The summary at the end of a run: what was done, skipped, failed or left for the next run, the throughput in
seconds of audio per second, the retries and each worker's share; printed, and kept as ``summary.json``."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .sharding import Shard

SUMMARY_FILE = "summary.json"
SHARD_SUMMARIES_DIR = "summaries"


def summary_name(shard: Shard | None = None) -> str:
    """Where a run's summary goes: ``summary.json``, or for one shard of a cluster run (several runners on one
    folder, each with its own) ``summaries/shard-I-of-N.json``; the cluster command writes ``summary.json``."""
    return SUMMARY_FILE if shard is None else f"{SHARD_SUMMARIES_DIR}/shard-{shard.index}-of-{shard.count}.json"


@dataclass
class Summary:
    executor: str
    items: int = 0
    """Items in the manifest."""
    skipped: int = 0
    """Finished by an earlier run (a result or a failure with the same fingerprint)."""
    done: int = 0
    failed: int = 0
    """New permanent failures, each recorded in its own file under failures/ (and the failures.jsonl index)."""
    gave_up: int = 0
    """Transient failures that outlasted the retries: the next run tries them again."""
    retries: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    per_worker: dict[str, int] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    removed_temporaries: int = 0

    @property
    def audio_s_per_s(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def complete(self) -> bool:
        """Every item of the manifest has its result or its recorded failure."""
        return self.gave_up == 0 and self.skipped + self.done + self.failed == self.items

    def shares(self) -> dict[str, float]:
        total = sum(self.per_worker.values())
        return {worker: count / total for worker, count in sorted(self.per_worker.items())} if total else {}

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "audio_s_per_s": self.audio_s_per_s, "complete": self.complete,
                "shares": self.shares()}

    def write(self, out: Path, name: str = SUMMARY_FILE) -> None:
        """Atomically (a temporary file, then a rename): a reader on a shared folder sees a whole summary."""
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)

    def render(self) -> str:
        lines = [
            f"{self.executor}: {self.items} items: {self.done} done, {self.skipped} skipped (finished before), "
            f"{self.failed} failed for good, {self.gave_up} left for the next run",
            f"{self.audio_s:.1f} s of audio in {self.wall_s:.1f} s: {self.audio_s_per_s:.2f} audio s/s; "
            f"{self.retries} retries",
        ]
        lines += [f"  {worker}: {self.per_worker[worker]} items ({share:.0%})"
                  for worker, share in self.shares().items()]
        lines += [f"  {event}" for event in self.events]
        if not self.complete:
            lines.append("Not complete: run the same command again to finish.")
        return "\n".join(lines)
