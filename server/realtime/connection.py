"""One realtime connection's way out: server events go out in order through one queue, bounded in bytes.

Sending never blocks the session: events are queued and one task writes them. A client that stops reading (its
socket's buffers full) makes the queue grow; once more than ``max_queued_bytes`` wait, the connection has fallen
behind: nothing more is queued, what is queued is dropped, and the socket is closed with 1008 and a reason.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import WebSocket

CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013


class Connection:
    def __init__(self, websocket: WebSocket, max_queued_bytes: int) -> None:
        self._websocket = websocket
        self.max_queued_bytes = max_queued_bytes
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.queued_bytes = 0
        """Events queued or being written, as the JSON text that goes out."""
        self.gone = False
        """The client has gone: nothing more is written."""
        self.fell_behind = asyncio.Event()
        """Set once the client fell more than ``max_queued_bytes`` behind."""
        self.close_code = CLOSE_NORMAL
        """How ``finish`` closes the socket when the client has kept up."""

    def send(self, event: dict[str, Any]) -> None:
        if self.gone or self.fell_behind.is_set():
            return
        text = json.dumps(event)
        if self.queued_bytes + len(text) > self.max_queued_bytes:
            self.fell_behind.set()
            return
        self.queued_bytes += len(text)
        self._queue.put_nowait(text)

    async def send_all(self) -> None:
        """Write the queued events until ``finish``; run as one task per connection."""
        while (text := await self._queue.get()) is not None:
            try:
                if not self.gone:
                    await self._websocket.send_text(text)
            except Exception:  # the client went away mid-send
                self.gone = True
            finally:
                self.queued_bytes -= len(text)

    async def finish(self, sender: asyncio.Task) -> None:
        """Send what is queued, then close the connection (unless the client already did); a client that fell
        behind gets nothing more: its socket is closed with 1008 and a reason at once."""
        if self.fell_behind.is_set():
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            await self._close(CLOSE_POLICY_VIOLATION, self.behind_reason)
            return
        self._queue.put_nowait(None)
        try:
            await sender
        finally:
            await self._close(self.close_code)

    @property
    def behind_reason(self) -> str:
        """The close reason (at most 123 bytes, as WebSocket allows)."""
        return f"The client is not reading: over {self.max_queued_bytes / 2**20:g} MiB of events waited to be sent."

    async def _close(self, code: int, reason: str | None = None) -> None:
        if self.gone:
            return
        try:
            await self._websocket.close(code, reason)
        except Exception:
            pass
