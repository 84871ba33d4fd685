"""The one interface of the executors: items in, outcomes out.

An executor never writes files: the runner records each outcome through ``bulk.outputs`` as it arrives, so an
item's result is on disk before the next one is awaited, and a killed run loses only what was in flight.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..manifest import Item


@dataclass(frozen=True)
class Done:
    """A transcription: the response body as the route returned it (a dict, or text for text formats), its text
    and the seconds of audio it covered (0 when unknown), and the worker (replica URL, process) that did it."""

    item: Item
    response: dict[str, Any] | str
    text: str
    audio_s: float
    worker: str
    model: str | None = None
    attempts: int = 1


@dataclass(frozen=True)
class Failed:
    """A permanent failure: the same request would fail again (a 4xx, an audio file that does not exist).
    ``error`` is the error body, OpenAI's ``{"error": {...}}`` where the server gave one."""

    item: Item
    status: int | None
    error: dict[str, Any]
    worker: str
    attempts: int = 1


@dataclass(frozen=True)
class GaveUp:
    """A transient failure that outlasted the retries: not recorded, so the next run tries the item again."""

    item: Item
    reason: str
    attempts: int = 1


Outcome = Done | Failed | GaveUp


def response_format_of(item: Item) -> str:
    """The response format an item's output holds, whichever executor transcribes it."""
    return item.response_format or "verbose_json"


@dataclass
class ExecutorStats:
    """What an executor counts besides its outcomes: retries, and per worker the items it finished."""

    retries: int = 0
    per_worker: dict[str, int] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    """Notable moments (a replica ejected, re-admitted), for the summary."""


class Executor(Protocol):
    name: str
    stats: ExecutorStats

    def run(self, items: Sequence[Item]) -> Iterator[Outcome]:
        """One outcome per item, as they finish; stops early only when the caller stops iterating."""
        ...

    def close(self) -> None:
        """Release what the executor holds (connections, threads, models)."""
        ...


def outcomes_from_threads(
    items: Sequence[Item], threads: int, one: Callable[[Item], Outcome], stop: threading.Event, name: str
) -> Iterator[Outcome]:
    """Every item through ``one`` on up to ``threads`` worker threads, one outcome per item as they finish. An
    exception in ``one`` (a bug, or a reason to abort the run) stops the workers and is raised here; so does leaving
    the loop early, or setting ``stop``: the workers then finish the item they hold and take no other."""
    todo: queue.Queue[Item | None] = queue.Queue()
    for item in items:
        todo.put(item)
    outcomes: queue.Queue[Outcome | BaseException] = queue.Queue()

    def work() -> None:
        while not stop.is_set() and (item := todo.get()) is not None:
            try:
                outcomes.put(one(item))
            except BaseException as exc:
                outcomes.put(exc)
                stop.set()
                return

    workers = [threading.Thread(target=work, name=f"{name}-{i}", daemon=True) for i in range(min(threads, len(items)))]
    for worker in workers:
        todo.put(None)
        worker.start()
    try:
        for _ in range(len(items)):
            outcome = outcomes.get()
            if isinstance(outcome, BaseException):
                raise outcome
            yield outcome
    finally:
        stop.set()
