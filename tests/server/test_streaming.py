"""The one thread bridge: a producer on its own worker thread, read from async code as it emits; stopped when the
reader leaves or the deadline passes. Stand-in producers; no model involved."""

from __future__ import annotations

import threading

import anyio
import pytest

from core.errors import RequestTimedOut
from server.edge.disconnect import Deadline
from server.streaming import produced_in_thread


async def read_all(produce, deadline: Deadline | None = None) -> list:
    return [item async for item in produced_in_thread(produce, deadline)]


def test_items_come_in_order_from_one_worker_thread():
    threads: set[int] = set()

    def produce(emit, stopped: threading.Event) -> None:
        for i in range(5):
            threads.add(threading.get_ident())
            emit(i)

    assert anyio.run(read_all, produce) == [0, 1, 2, 3, 4]
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_what_the_producer_raises_is_raised_to_the_reader_after_the_items_before_it():
    read: list[int] = []

    def produce(emit, stopped: threading.Event) -> None:
        emit(1)
        raise KeyError("broke")

    async def main() -> None:
        async for item in produced_in_thread(produce):
            read.append(item)

    with pytest.raises(KeyError, match="broke"):
        anyio.run(main)
    assert read == [1]


def test_a_reader_that_leaves_stops_the_producer():
    seen_stop = threading.Event()

    def produce(emit, stopped: threading.Event) -> None:
        emit("first")
        if stopped.wait(5):
            seen_stop.set()

    async def main() -> str:
        items = produced_in_thread(produce)
        first = await anext(items)
        await items.aclose()  # what the server does when the client disconnects
        return first

    assert anyio.run(main) == "first"
    assert seen_stop.wait(5)


def test_the_deadline_stops_the_producer_and_fails_the_reader():
    seen_stop = threading.Event()
    read: list[str] = []

    def produce(emit, stopped: threading.Event) -> None:
        emit("first")
        if stopped.wait(5):
            seen_stop.set()

    async def main() -> None:
        async for item in produced_in_thread(produce, Deadline(0.2)):
            read.append(item)

    with pytest.raises(RequestTimedOut, match="within 0.2 seconds"):
        anyio.run(main)
    assert read == ["first"] and seen_stop.wait(5)


def test_a_deadline_already_past_starts_no_producer():
    started = threading.Event()

    def produce(emit, stopped: threading.Event) -> None:
        started.set()

    with pytest.raises(RequestTimedOut):
        anyio.run(read_all, produce, Deadline(-1))
    assert not started.wait(0.2)
