"""Where a run stands, read from the manifest and the output folder alone (any executor's folder, while runners write
to it or after): each item done (a result with its fingerprint), failed for good (a failure file with it), or
pending, and the pending items by shard (what a cluster launcher still has to schedule)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .manifest import Item
from .outputs import Outputs
from .sharding import shard_of


@dataclass(frozen=True)
class Finished:
    """What the summary needs of a finished item: its seconds of audio, its worker, its tries (0 for a failure)."""

    item_id: str
    failed: bool
    audio_s: float = 0.0
    worker: str | None = None
    attempts: int = 0


@dataclass
class FolderStatus:
    items: int
    done: int = 0
    failed: int = 0
    pending: list[Item] = field(default_factory=list)
    temporaries: int = 0

    @property
    def complete(self) -> bool:
        return not self.pending

    def pending_by_shard(self, count: int) -> dict[int, list[Item]]:
        shards: dict[int, list[Item]] = {}
        for item in self.pending:
            shards.setdefault(shard_of(item.id, count), []).append(item)
        return dict(sorted(shards.items()))

    def render(self, shards: int | None = None) -> str:
        lines = [f"{self.items} items: {self.done} done, {self.failed} failed for good, {len(self.pending)} pending"]
        if shards and self.pending:
            lines += [f"  shard {index}/{shards}: {len(items)} pending"
                      for index, items in self.pending_by_shard(shards).items()]
        if self.temporaries:
            lines.append(f"{self.temporaries} temporary files (being written, or left by a killed runner)")
        lines.append("Complete." if self.complete else "Not complete: run the same command again to finish.")
        return "\n".join(lines)


def finished(outputs: Outputs, item: Item) -> Finished | None:
    """``item``'s result or recorded failure, read from the folder now (other runners' too); None while pending."""
    if (result := outputs.read_result(item)) is not None:
        return Finished(item.id, False, float(result.get("audio_s") or 0.0), result.get("worker"),
                        int(result.get("attempts") or 1))
    if outputs.read_failure(item) is not None:
        return Finished(item.id, True)
    return None


def split(outputs: Outputs, items: Iterable[Item]) -> tuple[list[Finished], list[Item]]:
    """``items`` split into those finished (as ``Finished``) and those pending."""
    done: list[Finished] = []
    pending: list[Item] = []
    for item in items:
        if (outcome := finished(outputs, item)) is None:
            pending.append(item)
        else:
            done.append(outcome)
    return done, pending


def folder_status(outputs: Outputs, items: Sequence[Item]) -> FolderStatus:
    done, pending = split(outputs, items)
    failed = sum(outcome.failed for outcome in done)
    return FolderStatus(len(items), len(done) - failed, failed, pending, len(outputs.temporaries()))
