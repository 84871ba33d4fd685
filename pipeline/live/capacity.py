"""How many live sessions may be open at once: in all, and per client (the server names a client by its API key).
A session over either bound is refused before it starts, with an ``OverloadedError`` that says which bound."""

from __future__ import annotations

import threading
from collections import Counter

from core.errors import OverloadedError

SESSION_LIMIT_CODE = "session_limit_reached"
RETRY_AFTER_S = 5.0
"""What a refused client is told to wait: sessions last minutes, so any retry is a guess; this one is not a storm."""


class SessionCapacity:
    """Open sessions, counted in all and per client. ``0`` for a bound: no bound."""

    def __init__(self, max_sessions: int, max_per_client: int) -> None:
        self.max_sessions = max_sessions
        self.max_per_client = max_per_client
        self._lock = threading.Lock()
        self._open = 0
        self._by_client: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return self._open

    def take(self, client: str | None) -> None:
        """Count one more session for ``client`` (None: a client without a name, bound only by the total), or
        refuse it."""
        with self._lock:
            if self.max_sessions and self._open >= self.max_sessions:
                raise OverloadedError(
                    f"This server already serves {self._open} realtime sessions, the most it serves at once: close "
                    "one or try again later.",
                    code=SESSION_LIMIT_CODE,
                    retry_after_s=RETRY_AFTER_S,
                )
            if client is not None and self.max_per_client and self._by_client[client] >= self.max_per_client:
                raise OverloadedError(
                    f"Your API key already has {self._by_client[client]} realtime sessions open, the most one key "
                    "may have at once: close one before opening another.",
                    code=SESSION_LIMIT_CODE,
                    retry_after_s=RETRY_AFTER_S,
                )
            self._open += 1
            if client is not None:
                self._by_client[client] += 1

    def release(self, client: str | None) -> None:
        with self._lock:
            self._open -= 1
            if client is not None:
                self._by_client[client] -= 1
                if not self._by_client[client]:
                    del self._by_client[client]
