"""Stand-ins for the ray executor's actor (``bulk.executors.ray.BulkTranscriber``), importable on Ray's workers
(the project is on their ``PYTHONPATH``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from bulk.executors.base import Done
from bulk.executors.ray import batch_items, outcome_columns

POISON = "poison"


class PoisonedTranscriber:
    """Dies (the process exits at once, as an OOM kill would) on every batch holding the item ``poison``; every
    other item is "transcribed" as its own id, in no time."""

    def __call__(self, batch: Mapping[str, Sequence[str]]) -> dict[str, list[Any]]:
        items = batch_items(batch)
        if any(item.id == POISON for item in items):
            os._exit(1)
        worker = f"ray:{os.uname().nodename}:{os.getpid()}"
        return outcome_columns(Done(item, {"text": item.id}, item.id, 1.0, worker) for item in items)
