"""Batching across requests: clips that concurrent requests send to one model are decoded together.

Each model has a ``ClipBatcher`` in front of its engine. Requests submit their clips (a short request is one
clip, a long file many) and wait for the results. A worker thread takes the oldest waiting clip, gathers up
to ``max_batch_size`` clips with the same decoding options, and makes one ``transcribe_clips`` call. With
several workers (engine workers that decode in parallel), a worker takes only its share of the waiting clips
while others are free.

Batches are shared fairly: each clip taken goes to the request that has had the least audio taken so far (its
``Share``; among equals, the one whose clip has waited longest), so a short request that arrives behind thirty long
files joins the next batch instead of waiting behind every clip they have queued, and requests in progress
otherwise take turns. One request has at most ``request_window`` clips (a batch's worth, by default) queued at a
time. When one of a request's clips fails, its other queued clips are withdrawn: nobody is waiting for them any
more.

How long to wait for company is adaptive: the batcher expects as many clips as arrived during the previous
batch cycle, and waits (at most ``max_wait_s`` from when a worker is free) only until that many are there. A
lone client never waits; concurrent clients, whose answers come back together and who then send again
together, are gathered into one batch. Clips that queue while a batch runs join the next one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from core.audio import SAMPLE_RATE
from core.errors import RequestCancelled
from core.types import Transcription, TranscribeOptions

from ..longform import ClipDecoder
from .share import Share


CANCEL_POLL_S = 0.25


@dataclass
class _Pending:
    clip: np.ndarray
    options: TranscribeOptions
    share: Share = field(default_factory=Share)
    """The request the clip belongs to: batches take clips from the requests that have had the least."""
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


class BatcherClosed(RuntimeError):
    pass


class ClipBatcher:
    def __init__(
        self,
        decode: ClipDecoder,
        max_batch_size: int = 8,
        max_wait_s: float = 0.05,
        workers: int = 1,
        name: str = "batcher",
        request_window: int | None = None,
        queue_depth: Callable[[int], None] = lambda depth: None,
    ) -> None:
        if max_batch_size < 1 or workers < 1:
            raise ValueError("max_batch_size and workers must be at least 1")
        self._decode = decode
        self.max_batch_size = max_batch_size
        self.request_window = request_window or max_batch_size
        """Clips one request may have queued at a time."""
        self.max_wait_s = max_wait_s
        self._queue: list[_Pending] = []
        self._queue_depth = queue_depth
        """Told the clips waiting after each change (the queue-depth gauge)."""
        self._arrivals = 0
        """Clips submitted since the last batch was formed."""
        self._expected = 1
        self._ready = threading.Condition()
        self._closed = False
        self._free_workers = workers
        """Workers not decoding: a batch takes no more than its share of the queue while others are free."""
        self._leftovers = False
        """The last batch left clips of its kind waiting: the next worker takes them without waiting."""
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, clip: np.ndarray, options: TranscribeOptions, share: Share | None = None) -> Future:
        """A future for the clip's transcription (timestamps relative to the clip); ``share``: the request it
        belongs to (None: a request of its own)."""
        pending = _Pending(clip, options, share or Share())
        with self._ready:
            if self._closed:
                raise BatcherClosed("the model is shutting down")
            self._queue.append(pending)
            self._queue_depth(len(self._queue))
            self._arrivals += 1
            self._ready.notify_all()
        return pending.future

    def decode(
        self,
        clips: Sequence[np.ndarray],
        options: TranscribeOptions,
        cancelled: threading.Event | None = None,
        share: Share | None = None,
    ) -> list[Transcription]:
        """``transcribe_clips`` through the batcher: the clips may share batches with other requests'.

        At most ``request_window`` of them are queued at a time; when one fails, or ``cancelled`` is set (the
        client has gone), the rest are withdrawn. ``share``: the request's, across all its calls (None: these
        clips are a request of their own).
        """
        share = share or Share()
        queued: deque[Future] = deque()
        results: list[Transcription] = []
        try:
            for clip in clips:
                _check(cancelled)
                queued.append(self.submit(clip, options, share))
                if len(queued) >= self.request_window:
                    results.append(_result(queued.popleft(), cancelled))
            while queued:
                results.append(_result(queued.popleft(), cancelled))
        finally:
            for future in queued:  # only left after a failure or a cancellation: withdraw them
                future.cancel()
        return results

    def close(self) -> None:
        """Stop the workers; clips still queued fail with ``BatcherClosed``."""
        with self._ready:
            self._closed = True
            abandoned, self._queue = self._queue, []
            self._queue_depth(0)
            self._ready.notify_all()
        for pending in abandoned:
            pending.future.set_exception(BatcherClosed("the model is shutting down"))

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._run(batch)
            finally:
                with self._ready:
                    self._free_workers += 1
            del batch

    def _run(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if p.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = self._decode([p.clip for p in live], live[0].options)
            if len(results) != len(live):
                raise RuntimeError(f"the engine returned {len(results)} results for {len(live)} clips")
        except BaseException as exc:  # every waiter must hear about it, whatever it is
            self._withdraw({id(p.share) for p in live})
            for pending in live:
                pending.future.set_exception(exc)
        else:
            for pending, result in zip(live, results):
                pending.future.set_result(result)

    def _withdraw(self, shares: set[int]) -> None:
        """Cancel the queued clips of requests that just failed: nobody will wait for them."""
        with self._ready:
            withdrawn = [p for p in self._queue if id(p.share) in shares]
            self._queue = [p for p in self._queue if id(p.share) not in shares]
            self._queue_depth(len(self._queue))
        for pending in withdrawn:
            pending.future.cancel()

    def _next_batch(self) -> list[_Pending] | None:
        free_since = time.monotonic()
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            oldest = self._queue[0]
            # Counted from when this worker could take it: a clip that queued behind a running batch still
            # gives the clients of that batch, who are about to send again, a chance to join it.
            deadline = max(oldest.queued_at, free_since) + self.max_wait_s
            # Clips another worker left behind when it took its share have waited a cycle already: no wait.
            while not self._closed and not self._leftovers and self._count_like(oldest) < self._expected:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            self._queue = [p for p in self._queue if not p.future.cancelled()]  # withdrawn by their request
            if not self._queue:  # closed while waiting (close() failed the queue), or everything withdrawn
                if self._closed:
                    return None
                self._free_workers -= 1  # given back after the (empty) batch, like any other
                return []
            first = _least_served(self._queue)
            like = [p for p in self._queue if p.options == first.options]
            batch = _least_served_first(like, self._batch_size(len(like)))
            taken = {id(p) for p in batch}
            self._queue = [p for p in self._queue if id(p) not in taken]
            self._queue_depth(len(self._queue))
            if not self._leftovers:  # a new cycle: expect as many clips as arrived during the last one
                self._expected = max(1, min(self.max_batch_size, self._arrivals))
                self._arrivals = 0
            self._leftovers = len(like) > len(batch)
            self._free_workers -= 1
            return batch

    def _batch_size(self, waiting: int) -> int:
        """This worker's batch size: the waiting clips spread over the free workers, this one included, so
        that four clips on two free workers are two parallel batches of two, not one of four beside an idle
        worker (on a CPU, one thread per worker, parallel workers beat a bigger batch)."""
        return max(1, min(self.max_batch_size, -(-waiting // max(self._free_workers, 1))))

    def _count_like(self, oldest: _Pending) -> int:
        return sum(1 for p in self._queue if p.options == oldest.options)


def _check(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise RequestCancelled("The client closed the connection.")


def _result(future: Future, cancelled: threading.Event | None) -> Transcription:
    """The clip's result, or RequestCancelled as soon as the request is cancelled."""
    while True:
        try:
            return future.result(timeout=None if cancelled is None else CANCEL_POLL_S)
        except TimeoutError:
            _check(cancelled)


def _least_served(queue: list[_Pending]) -> _Pending:
    """The oldest clip of the request that has had the least taken so far (among equals, the oldest clip)."""
    return min(queue, key=lambda pending: pending.share.taken_s)  # min keeps the first of equals: queue order


def _least_served_first(candidates: list[_Pending], size: int) -> list[_Pending]:
    """Up to ``size`` clips, each from the request that has had the least taken so far, counting the clips taken
    here (among equals, the request whose oldest clip comes first); each request's clips in order."""
    lanes: dict[int, deque[_Pending]] = {}
    for pending in candidates:  # queue order: each request's clips stay in order, oldest request first
        lanes.setdefault(id(pending.share), deque()).append(pending)
    waiting = list(lanes.values())
    batch: list[_Pending] = []
    while waiting and len(batch) < size:
        lane = min(waiting, key=lambda lane: lane[0].share.taken_s)
        pending = lane.popleft()
        pending.share.taken_s += len(pending.clip) / SAMPLE_RATE
        batch.append(pending)
        if not lane:
            waiting.remove(lane)
    return batch
