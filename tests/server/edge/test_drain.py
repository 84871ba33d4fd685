"""The drain: readiness and new requests refused at once, requests in flight finished up to the bound, then the
hand-over to uvicorn's SIGTERM handler."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from server.edge.drain import SCOPE_KEY, Drain, DrainMiddleware


class Gated:
    """An ASGI app: ``/slow`` answers once ``gate`` is set, anything else at once; records the drain it saw."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.saw_drain: list[Any] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return
        self.saw_drain.append(scope.get(SCOPE_KEY))
        if scope["path"] == "/slow":
            await self.gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app, path: str) -> tuple[int, dict[str, str]]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    await app(scope, receive, send)
    start = sent[0]
    return start["status"], {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}


def test_draining_refuses_readiness_and_new_requests_and_lets_those_in_flight_finish():
    async def go() -> None:
        app = Gated()
        middleware = DrainMiddleware(app, timeout_s=10)
        assert (await call(middleware, "/readyz"))[0] == 200
        slow = asyncio.create_task(call(middleware, "/slow"))
        await asyncio.sleep(0.01)
        handed_over: list[int] = []
        draining = asyncio.create_task(middleware.drain.run(lambda: handed_over.append(middleware.drain.inflight)))
        await asyncio.sleep(0.05)
        assert middleware.drain.draining and middleware.drain.inflight == 1
        status, headers = await call(middleware, "/readyz")
        assert status == 503
        status, headers = await call(middleware, "/v1/audio/transcriptions")
        assert status == 503 and headers["retry-after"] == "1"
        assert (await call(middleware, "/livez"))[0] == 200 and (await call(middleware, "/metrics"))[0] == 200
        assert handed_over == []
        app.gate.set()
        assert (await slow)[0] == 200
        await draining
        assert handed_over == [0]
        assert app.saw_drain[0] is middleware.drain

    asyncio.run(go())


def test_an_idle_worker_hands_over_at_once_and_a_busy_one_at_the_bound():
    async def go() -> None:
        idle = DrainMiddleware(Gated(), timeout_s=10)
        handed: list[str] = []
        await asyncio.wait_for(idle.drain.run(lambda: handed.append("idle")), 1)
        busy = DrainMiddleware(Gated(), timeout_s=0.2)
        stuck = asyncio.create_task(call(busy, "/slow"))
        await asyncio.sleep(0.01)
        await asyncio.wait_for(busy.drain.run(lambda: handed.append("busy")), 2)
        assert handed == ["idle", "busy"]
        with pytest.raises(asyncio.CancelledError):
            await stuck

    asyncio.run(go())


def test_sigterm_drains_then_calls_the_previous_handler_once():
    calls: list[int] = []
    original = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        async def go() -> None:
            app = Gated()
            middleware = DrainMiddleware(app, timeout_s=10)
            await middleware({"type": "lifespan"}, None, None)  # installs the handler, as uvicorn's lifespan does
            slow = asyncio.create_task(call(middleware, "/slow"))
            await asyncio.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)  # the arbiter's, after a kill of the process group: no effect
            await asyncio.sleep(0.05)
            assert middleware.drain.draining and calls == []
            app.gate.set()
            await slow
            for _ in range(100):
                if calls:
                    break
                await asyncio.sleep(0.01)

        asyncio.run(go())
        assert calls == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, original)


def test_a_drain_started_from_another_thread_wakes_its_waiters():
    async def go() -> None:
        drain = Drain(timeout_s=1)
        waiter = asyncio.create_task(drain.wait())
        await asyncio.sleep(0.01)
        await asyncio.to_thread(drain.start)
        await asyncio.wait_for(waiter, 1)
        await asyncio.wait_for(drain.wait(), 1)  # once started, waiting returns at once

    asyncio.run(go())
