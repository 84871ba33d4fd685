"""Batching across requests: clips that concurrent requests send to one model are decoded together.

Each model has a ``ClipBatcher`` in front of its engine. Requests submit their clips (a short request is one
clip, a long file many) and wait for the results. A worker thread takes the oldest waiting clip, gathers up
to ``max_batch_size`` clips with the same decoding options (waiting at most ``max_wait_s`` after the oldest
arrived), and makes one ``transcribe_clips`` call. While a batch runs, newcomers queue up and form the
next one, so under load batches fill without any waiting at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from .longform import ClipDecoder
from .results import Transcription, TranscribeOptions


@dataclass
class _Pending:
    clip: np.ndarray
    options: TranscribeOptions
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


class BatcherClosed(RuntimeError):
    pass


class ClipBatcher:
    def __init__(
        self, decode: ClipDecoder, max_batch_size: int = 8, max_wait_s: float = 0.01, workers: int = 1, name: str = "batcher"
    ) -> None:
        if max_batch_size < 1 or workers < 1:
            raise ValueError("max_batch_size and workers must be at least 1")
        self._decode = decode
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._queue: list[_Pending] = []
        self._ready = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, clip: np.ndarray, options: TranscribeOptions) -> Future:
        """A future for the clip's transcription (timestamps relative to the clip)."""
        pending = _Pending(clip, options)
        with self._ready:
            if self._closed:
                raise BatcherClosed("the model is shutting down")
            self._queue.append(pending)
            self._ready.notify_all()
        return pending.future

    def decode(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        """``transcribe_clips`` through the batcher: the clips may share batches with other requests'."""
        futures = [self.submit(clip, options) for clip in clips]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the workers; clips still queued fail with ``BatcherClosed``."""
        with self._ready:
            self._closed = True
            abandoned, self._queue = self._queue, []
            self._ready.notify_all()
        for pending in abandoned:
            pending.future.set_exception(BatcherClosed("the model is shutting down"))

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            live = [p for p in batch if p.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                results = self._decode([p.clip for p in live], live[0].options)
            except BaseException as exc:  # every waiter must hear about it, whatever it is
                for pending in live:
                    pending.future.set_exception(exc)
            else:
                for pending, result in zip(live, results, strict=True):
                    pending.future.set_result(result)
            del batch, live

    def _next_batch(self) -> list[_Pending] | None:
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            oldest = self._queue[0]
            deadline = oldest.queued_at + self.max_wait_s
            while not self._closed and self._count_like(oldest) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            if not self._queue:  # closed while waiting: close() failed the queue
                return None if self._closed else []
            oldest = self._queue[0]
            batch = [p for p in self._queue if p.options == oldest.options][: self.max_batch_size]
            taken = {id(p) for p in batch}
            self._queue = [p for p in self._queue if id(p) not in taken]
            return batch

    def _count_like(self, oldest: _Pending) -> int:
        return sum(1 for p in self._queue if p.options == oldest.options)
