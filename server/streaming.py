"""The one bridge from blocking work to async code: a producer runs on its own thread and its items are read
as they come."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from .edge.disconnect import Deadline

T = TypeVar("T")
Emit = Callable[[T], None]
Producer = Callable[[Emit[T], threading.Event], None]
"""``produce(emit, stopped)``: blocking work that hands each item to ``emit`` as it has it, and stops early once
``stopped`` is set."""
_END = object()


async def produced_in_thread(produce: Producer[T], deadline: Deadline | None = None) -> AsyncGenerator[T, None]:
    """The items ``produce`` emits on a worker thread, as it emits them; what it raises is raised here.

    The producer runs on that one thread from start to end, so locks it takes (a model lease) are released
    where they were taken. ``stopped`` is set when the reader stops early (a client that disconnects) or when
    ``deadline`` passes, which raises :class:`RequestTimedOut` here.
    """
    if deadline is not None and deadline.passed:
        raise deadline.error()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
    stopped = threading.Event()

    def post(item: object, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the event loop is gone; nobody is listening
            stopped.set()

    def work() -> None:
        try:
            produce(post, stopped)
        except BaseException as exc:  # delivered to the reader, raised there
            post(_END, exc)
        else:
            post(_END)

    threading.Thread(target=work, name="stream-worker", daemon=True).start()
    try:
        while True:
            item, error = await _next(queue, deadline)
            if error is not None:
                raise error
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        stopped.set()


async def _next(
    queue: asyncio.Queue[tuple[object, BaseException | None]], deadline: Deadline | None
) -> tuple[object, BaseException | None]:
    if deadline is None:
        return await queue.get()
    try:
        return await asyncio.wait_for(queue.get(), deadline.remaining_s)
    except TimeoutError:
        raise deadline.error() from None
