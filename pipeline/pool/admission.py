"""Admission by estimated wait: a request that would wait too long for its model is refused at once, with the time
after which it would not, instead of being queued for minutes.

Each transcription model keeps the requests it has admitted (their audio, what is left of it) and its measured
throughput (``throughput``). A new request's wait is estimated as the batcher would share the model
(``fair_share``): over ``max_wait_s``, it gets an ``OverloadedError`` (429) whose ``retry_after_s`` says when the
requests now admitted will have drained enough. Until the model has decoded a batch its speed is unknown, and every
request is admitted (the pool's count of queued requests still applies).
"""

from __future__ import annotations

import threading

from core.errors import OverloadedError

from .fair_share import extra_wait_s, wait_falls_to_s
from .share import Share
from .throughput import Throughput


class Admission:
    def __init__(self, model_id: str, throughput: Throughput, max_wait_s: float | None) -> None:
        self.model_id = model_id
        self.throughput = throughput
        self.max_wait_s = max_wait_s
        """None: no bound on the estimated wait."""
        self._admitted: set[Share] = set()
        self._lock = threading.Lock()

    def admit(self, work_s: float) -> Share:
        """The request's share of the model, counted until ``leave``; ``OverloadedError`` when its estimated wait is
        over the bound."""
        with self._lock:
            self._check(work_s)
            share = Share(work_s=work_s)
            self._admitted.add(share)
            return share

    def leave(self, share: Share) -> None:
        with self._lock:
            self._admitted.discard(share)

    def estimated_wait_s(self, work_s: float) -> float | None:
        """Seconds beyond its own decoding that a request of ``work_s`` would wait now; None while the model's
        speed is unknown."""
        speed = self.throughput.audio_s_per_s
        with self._lock:
            return None if speed is None else extra_wait_s(self._remaining(), work_s, speed)

    def first_leaves_in_s(self) -> float | None:
        """When the request admitted with the least left should be done, the model shared fairly (each request has
        then had that much); None while the speed, or what the requests have left, is unknown."""
        speed = self.throughput.audio_s_per_s
        with self._lock:
            remaining = [left for left in self._remaining() if left > 0]
            return None if speed is None or not remaining else min(remaining) * len(remaining) / speed

    def queued_audio_s(self) -> float:
        """Seconds of audio the requests admitted have left."""
        with self._lock:
            return sum(self._remaining())

    def _remaining(self) -> list[float]:
        return [share.remaining_s for share in self._admitted]

    def _check(self, work_s: float) -> None:
        speed = self.throughput.audio_s_per_s
        if self.max_wait_s is None or speed is None:
            return
        remaining = self._remaining()
        wait = extra_wait_s(remaining, work_s, speed)
        if wait <= self.max_wait_s:
            return
        retry = round(wait_falls_to_s(remaining, work_s, speed, self.max_wait_s), 3)  # no 9.000001 s: 10 s
        raise OverloadedError(
            f"The model {self.model_id!r} has {sum(remaining):.0f} s of audio from {len(remaining)} requests to "
            f"decode (about {speed:.0f} s of audio a second): this request's {work_s:.0f} s would wait about "
            f"{wait:.0f} s, over the limit of {self.max_wait_s:g} s. Try again in {max(retry, 1):.0f} s.",
            input="model",
            retry_after_s=max(retry, 1.0),
        )
