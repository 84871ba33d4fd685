"""Blocking work for a request, on a worker thread, told when the client goes away."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
from starlette.requests import Request

T = TypeVar("T")
POLL_S = 0.5


async def run_while_connected(request: Request, work: Callable[[threading.Event], T]) -> T:
    """``work(cancelled)`` on a worker thread; ``cancelled`` is set if the client disconnects first, so that the
    pipeline can drop what it has not decoded yet instead of working for nobody."""
    cancelled = threading.Event()
    failure: BaseException | None = None

    async def watch() -> None:
        while not await request.is_disconnected():
            await anyio.sleep(POLL_S)
        cancelled.set()

    async with anyio.create_task_group() as watchers:
        watchers.start_soon(watch)
        try:
            result = await anyio.to_thread.run_sync(work, cancelled)
        except Exception as exc:  # raised below, outside the task group, which would wrap it in a group
            failure = exc
        watchers.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result
