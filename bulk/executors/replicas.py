"""The replicas the http executor spreads requests over: least outstanding requests first, at most ``cap`` in
flight on each, a replica that keeps failing ejected until its ``/readyz`` answers 200 again, a replica that
answered 429 or 503 with ``Retry-After`` left alone until then."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Replica:
    url: str
    outstanding: int = 0
    consecutive_failures: int = 0
    ejected: bool = False
    not_before: float = 0.0
    """Monotonic time before which no request goes here (its ``Retry-After``)."""
    served: int = 0
    ejections: int = 0


class NoReplicaAvailable(Exception):
    """No admitted replica had room before the deadline."""


@dataclass
class ReplicaSet:
    urls: list[str]
    cap: int = 4
    """Requests in flight per replica."""
    eject_after: int = 3
    """Consecutive failures (connection errors, 5xx) that eject a replica."""
    on_event: Callable[[str], None] = lambda message: None
    replicas: list[Replica] = field(init=False)
    _changed: threading.Condition = field(init=False, default_factory=threading.Condition)

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("at least one replica URL is needed")
        self.replicas = [Replica(url) for url in self.urls]

    def acquire(self, avoid: str | None = None, timeout_s: float | None = None) -> Replica:
        """The admitted replica with the fewest requests in flight and room for one more (``avoid``, the one that
        just failed this request, only when no other has room); waits until one has."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._changed:
            while True:
                now = time.monotonic()
                open_ = [r for r in self.replicas if not r.ejected and r.outstanding < self.cap and r.not_before <= now]
                preferred = [r for r in open_ if r.url != avoid] or open_
                if preferred:
                    replica = min(preferred, key=lambda r: (r.outstanding, r.served))
                    replica.outstanding += 1
                    return replica
                waits = [r.not_before - now for r in self.replicas if not r.ejected and r.not_before > now]
                wait = min([*waits, 1.0])
                if deadline is not None:
                    if now >= deadline:
                        raise NoReplicaAvailable
                    wait = min(wait, deadline - now)
                self._changed.wait(max(wait, 0.01))

    def succeeded(self, replica: Replica) -> None:
        with self._changed:
            replica.outstanding -= 1
            replica.consecutive_failures = 0
            replica.served += 1
            self._changed.notify_all()

    def released(self, replica: Replica, retry_after_s: float | None = None) -> None:
        """The request ended without counting against the replica (a 4xx, a 429); ``retry_after_s`` keeps
        requests away from it that long."""
        with self._changed:
            replica.outstanding -= 1
            if retry_after_s:
                replica.not_before = max(replica.not_before, time.monotonic() + retry_after_s)
            self._changed.notify_all()

    def failed(self, replica: Replica, retry_after_s: float | None = None) -> None:
        """A connection error or a 5xx: counted; ``eject_after`` in a row eject the replica."""
        with self._changed:
            replica.outstanding -= 1
            replica.consecutive_failures += 1
            if retry_after_s:
                replica.not_before = max(replica.not_before, time.monotonic() + retry_after_s)
            if not replica.ejected and replica.consecutive_failures >= self.eject_after:
                replica.ejected = True
                replica.ejections += 1
                self.on_event(f"ejected {replica.url} after {replica.consecutive_failures} failures in a row")
            self._changed.notify_all()

    def readmit(self, replica: Replica) -> None:
        with self._changed:
            if replica.ejected:
                replica.ejected = False
                replica.consecutive_failures = 0
                replica.not_before = 0.0
                self.on_event(f"re-admitted {replica.url}: /readyz answers 200")
            self._changed.notify_all()

    def ejected(self) -> list[Replica]:
        with self._changed:
            return [r for r in self.replicas if r.ejected]
