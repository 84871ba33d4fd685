"""Runs a blocking iterator (an engine decoding segment by segment) on its own thread, for async code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


async def iterate_in_thread(make_iterator: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Yield the items of ``make_iterator()`` as a worker thread produces them.

    The iterator is created, advanced and closed on that one thread, so locks it takes (a model
    lease) are released where they were taken. When the consumer stops early (a client that
    disconnects), the worker stops after the item in progress.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
    stop = threading.Event()

    def post(item: object, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the event loop is gone; nobody is listening
            stop.set()

    def work() -> None:
        iterator = make_iterator()
        try:
            for item in iterator:
                if stop.is_set():
                    break
                post(item)
        except BaseException as exc:  # delivered to the consumer, raised there
            post(_END, exc)
        else:
            post(_END)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    threading.Thread(target=work, name="stream-worker", daemon=True).start()
    try:
        while True:
            item, error = await queue.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
