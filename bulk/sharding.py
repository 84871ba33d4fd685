"""Shards of a manifest: item ``id`` belongs to shard ``sha256(id) mod N``. Stable (no process's hash seed, no order
of the manifest), so the tasks of a resubmitted array, or a run on another host, re-create the same shards."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from .manifest import Item


def shard_of(item_id: str, count: int) -> int:
    return int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``--shard I/N``, 0 <= I < N)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: needs 0 <= I < N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"``."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, item: Item) -> bool:
        return shard_of(item.id, self.count) == self.index

    def select(self, items: Iterable[Item]) -> list[Item]:
        return [item for item in items if self.holds(item)]
