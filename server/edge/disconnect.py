"""Blocking work for a request, on a worker thread, told when the client goes away or its time is up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
from starlette.requests import Request

from core.errors import RequestCancelled, RequestTimedOut

T = TypeVar("T")
POLL_S = 0.5


class Deadline:
    """A request's time limit (``request_timeout_s``), counted from when the request is taken up."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._at = time.monotonic() + timeout_s

    @property
    def remaining_s(self) -> float:
        return self._at - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.remaining_s < 0

    def error(self) -> RequestTimedOut:
        """What a request that ran past its deadline fails with (504 in OpenAI's error shape)."""
        return RequestTimedOut(f"The request did not finish within {self.timeout_s:g} seconds.", input="file")


async def run_while_connected(request: Request, work: Callable[[threading.Event], T], timeout_s: float) -> T:
    """``work(cancelled)`` on a worker thread; ``cancelled`` is set if the client disconnects first, or after
    ``timeout_s``, so that the pipeline drops what it has not decoded yet instead of working for nobody.
    Past the deadline the request fails with :class:`RequestTimedOut` (504 in OpenAI's error shape)."""
    cancelled = threading.Event()
    failure: BaseException | None = None
    deadline = Deadline(timeout_s)
    timed_out = False

    async def watch() -> None:
        nonlocal timed_out
        while not await request.is_disconnected():
            if deadline.passed:
                timed_out = True
                break
            await anyio.sleep(POLL_S)
        cancelled.set()

    async with anyio.create_task_group() as watchers:
        watchers.start_soon(watch)
        try:
            result = await anyio.to_thread.run_sync(work, cancelled)
        except Exception as exc:  # raised below, outside the task group, which would wrap it in a group
            failure = exc
        watchers.cancel_scope.cancel()
    if timed_out and isinstance(failure, RequestCancelled):
        raise deadline.error() from failure
    if failure is not None:
        raise failure
    return result
