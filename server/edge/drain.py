"""Graceful drain on SIGTERM, in front of uvicorn's own graceful shutdown.

How BentoML 1.4.39 stops a worker: ``bentoml serve`` is a circus arbiter; each HTTP worker is a circus watcher
process running ``uvicorn.Server`` on the socket the arbiter opened. On SIGTERM the arbiter sends SIGTERM to each
worker (``stop_signal``) and waits up to ``graceful_timeout`` (86400 s) before SIGKILL. In the worker, uvicorn's own
handler (installed by ``Server.capture_signals`` before the lifespan starts) sets ``should_exit``; uvicorn then
stops listening at once, closes idle keep-alive connections, closes every WebSocket with 1012, lets HTTP requests
in flight finish (``timeout_graceful_shutdown``, unset by BentoML: no bound), and runs the lifespan shutdown (the
service's ``@bentoml.on_shutdown`` hooks). Nobody can be told "not ready" in between: the port just stops answering.

``DrainMiddleware`` puts a drain before that: on the lifespan's start it wraps uvicorn's SIGTERM handler. The first
SIGTERM starts draining: ``/readyz`` answers 503 at once, new requests and realtime sessions get 503 with
``Retry-After`` (through ``errors.error_response``), open realtime sessions are told to end (their turn is
finalised, then they close with 1001), and requests in flight run on, up to ``timeout_s``; then the requests still
running are cancelled and uvicorn's handler runs, and uvicorn's shutdown goes on as before. A second SIGTERM (the
arbiter's, after a ``kill`` of the whole process group) changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import ErrorKind, STTError

from .errors import error_response

logger = logging.getLogger("stt.drain")
SCOPE_KEY = "stt.drain"
"""Where a request finds the drain (a WebSocket route waits on ``Drain.wait``)."""
UNTOUCHED_PATHS = frozenset({"/livez", "/healthz", "/metrics"})
"""Answered as usual while draining: the process is alive and its metrics are still read."""
READINESS_PATH = "/readyz"
GOING_AWAY = 1001
"""The WebSocket close code of a server going down."""


class ShuttingDown(STTError):
    kind = ErrorKind.UNAVAILABLE
    code = "server_shutting_down"


class Drain:
    """One worker's drain: whether it has started, the requests and sessions in flight, the hand-over."""

    def __init__(self, timeout_s: float, retry_after_s: float = 1.0) -> None:
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.started_at: float | None = None
        self._inflight: set[asyncio.Task] = set()
        self._started: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: asyncio.Event | None = None
        self._installed = False

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wrap the process's SIGTERM handler (uvicorn's): the first SIGTERM drains, then hands over to it."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only (an app under a test client runs on another)
        self._installed = True
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: Any) -> None:
            if self.draining:
                return
            loop.call_soon_threadsafe(lambda: loop.create_task(self.run(lambda: _call(previous, signum, frame))))

        signal.signal(signal.SIGTERM, on_sigterm)

    async def run(self, hand_over: Callable[[], None]) -> None:
        """Drain, then ``hand_over`` (uvicorn's SIGTERM handler)."""
        self.start()
        logger.info("SIGTERM: draining %d request(s) and session(s) for up to %.0f s", self.inflight, self.timeout_s)
        try:
            await asyncio.wait_for(self._wait_idle(), self.timeout_s)
        except TimeoutError:
            logger.warning("drain bound of %.0f s passed: cancelling %d request(s)", self.timeout_s, self.inflight)
            for task in list(self._inflight):
                task.cancel()
        logger.info("drained in %.1f s; shutting down", time.monotonic() - (self.started_at or 0))
        hand_over()

    def start(self) -> None:
        """Start draining (from any thread): the waiting sessions are woken on their loop."""
        if self.started_at is None:
            self.started_at = time.monotonic()
            if self._started is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self._started.set)

    async def wait(self) -> None:
        """Returns once draining has started (a realtime session ends its turn then)."""
        await self._event().wait()

    def refusal(self) -> ShuttingDown:
        return ShuttingDown("The server is shutting down: send the request to another replica or retry.",
                            retry_after_s=self.retry_after_s)

    def _event(self) -> asyncio.Event:
        if self._started is None:
            self._loop = asyncio.get_running_loop()
            self._started = asyncio.Event()
        if self.draining:
            self._started.set()
        return self._started

    def enter(self, task: asyncio.Task) -> None:
        self._inflight.add(task)

    def leave(self, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        if not self._inflight and self._idle is not None:
            self._idle.set()

    async def _wait_idle(self) -> None:
        self._idle = asyncio.Event()
        if not self._inflight:
            return
        await self._idle.wait()


def _call(handler: Any, signum: int, frame: Any) -> None:
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:  # nobody else handles SIGTERM: die of it, as before
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)


class DrainMiddleware:
    """Counts the requests and sessions in flight, refuses new ones while draining, and installs the SIGTERM
    handler when the server starts (uvicorn's lifespan, on the worker's main thread)."""

    def __init__(self, app: ASGIApp, timeout_s: float, drain: Drain | None = None) -> None:
        self.app = app
        self.drain = drain or Drain(timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.drain.install(asyncio.get_running_loop())
            await self.app(scope, receive, send)
            return
        if scope["type"] not in ("http", "websocket") or scope["path"].rstrip("/") in UNTOUCHED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.drain.draining:
            await self._refuse(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        self.drain.enter(task)
        try:
            await self.app({**scope, SCOPE_KEY: self.drain}, receive, send)
        finally:
            self.drain.leave(task)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1013})  # try again later
            return
        if scope["path"].rstrip("/") == READINESS_PATH:
            await error_response(ShuttingDown("Draining: not ready."))(scope, receive, send)
            return
        await error_response(self.drain.refusal())(scope, receive, send)
