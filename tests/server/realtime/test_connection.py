"""A realtime connection's way out: events in order, and a client that stops reading closed with 1008 once more
than the bound waits, instead of the server holding what it cannot send."""

from __future__ import annotations

import asyncio
import json

from server.realtime.connection import CLOSE_POLICY_VIOLATION, Connection


class SlowSocket:
    """A client socket whose reads the test controls: ``send_text`` blocks until ``reading`` is set."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.sent: list[str] = []
        self.closed: tuple[int, str | None] | None = None

    async def send_text(self, text: str) -> None:
        await self.reading.wait()
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)


def event(number: int, size: int = 100) -> dict:
    return {"type": "error", "n": number, "pad": "x" * size}


def test_events_go_out_in_order_and_the_socket_closes_normally():
    async def go():
        socket = SlowSocket()
        connection = Connection(socket, max_queued_bytes=10_000)
        sender = asyncio.create_task(connection.send_all())
        for number in range(20):
            connection.send(event(number))
        await asyncio.sleep(0)
        assert connection.queued_bytes > 0 and not connection.fell_behind.is_set()
        socket.reading.set()
        await connection.finish(sender)
        return socket, connection

    socket, connection = asyncio.run(go())
    assert [json.loads(text)["n"] for text in socket.sent] == list(range(20))
    assert socket.closed == (1000, None) and connection.queued_bytes == 0


def test_a_client_that_does_not_read_is_closed_with_1008_once_the_queue_passes_its_bound():
    async def go():
        socket = SlowSocket()
        connection = Connection(socket, max_queued_bytes=50_000)
        sender = asyncio.create_task(connection.send_all())
        sent = 0
        while not connection.fell_behind.is_set():
            connection.send(event(sent, size=1_000))
            sent += 1
            await asyncio.sleep(0)
        held = connection.queued_bytes
        for number in range(100):  # what comes after is not queued
            connection.send(event(number, size=1_000))
        assert connection.queued_bytes == held <= 50_000
        await connection.finish(sender)
        return socket, sent, sender

    socket, sent, sender = asyncio.run(go())
    assert 45 <= sent <= 50  # about 1 kB each
    assert socket.sent == [] and sender.done()
    code, reason = socket.closed
    assert code == CLOSE_POLICY_VIOLATION and "not reading" in reason and len(reason.encode()) <= 123


def test_a_client_that_went_away_is_not_closed_again():
    class GoneSocket(SlowSocket):
        async def send_text(self, text: str) -> None:
            raise RuntimeError("connection lost")

    async def go():
        socket = GoneSocket()
        connection = Connection(socket, max_queued_bytes=10_000)
        sender = asyncio.create_task(connection.send_all())
        connection.send(event(1))
        await asyncio.sleep(0)
        await connection.finish(sender)
        return socket, connection

    socket, connection = asyncio.run(go())
    assert connection.gone and socket.closed is None
