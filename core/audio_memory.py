"""The memory that decoded audio may take, across every request at once: uploaded files, streamed transcriptions,
chat audio parts and the buffers of live sessions.

Decoded audio is what a small request can make the server hold: 230 MB per hour at 16 kHz float32, from an upload
of a few hundred kilobytes. So a request reserves the bytes its audio will take before decoding it (from the
duration the file declares, or from the limits, in steps as it decodes), and a decode that grows past its
reservation takes more or stops. A reservation held by an array (``AudioReservation.hold``) is given back when the
array is freed, whichever way the request ends: its result sent, an error, the client gone. When the budget is full
a request waits briefly for others to give theirs back and then gets ``OverloadedError`` (429, with Retry-After);
audio that alone needs more than the whole budget gets ``TooLargeError`` (413).
"""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np

from . import metrics
from .errors import OverloadedError, RequestCancelled, TooLargeError

WAIT_S = 5.0
"""How long a request waits for room in a full budget before it is refused."""
MIB = 2**20


class AudioMemoryBudget:
    """Bytes of decoded audio that requests hold or have reserved, within ``limit_bytes`` (None: no limit, only the
    count). Thread-safe."""

    def __init__(self, limit_bytes: int | None = None, wait_s: float = WAIT_S) -> None:
        self.limit_bytes = limit_bytes
        self.wait_s = wait_s
        self._held = 0
        # Re-entrant: a reservation is given back from a finalizer, which the garbage collector may run on any
        # thread at any allocation, this budget's own included.
        self._changed = threading.Condition(threading.RLock())

    @property
    def held_bytes(self) -> int:
        return self._held

    def reserve(
        self, nbytes: int, *, input: str = "file", wait: bool = True, cancelled: threading.Event | None = None
    ) -> AudioReservation:
        """A reservation of ``nbytes``; see ``AudioReservation.cover`` for the wait and the errors. ``input`` names
        the request input whose audio it is, for the errors."""
        reservation = AudioReservation(self, input)
        reservation.cover(nbytes, wait=wait, cancelled=cancelled)
        return reservation

    def _resize(
        self,
        reservation: AudioReservation,
        nbytes: int,
        wait: bool = False,
        cancelled: threading.Event | None = None,
        collect: bool = True,
    ) -> None:
        """Set what ``reservation`` holds to ``nbytes``: less at once, more when it fits (after up to ``wait_s``
        when ``wait``, and with ``collect`` after one garbage collection, as audio in a reference cycle is freed
        only by one)."""
        deadline = time.monotonic() + (self.wait_s if wait else 0.0)
        collected = not collect
        with self._changed:
            while nbytes > reservation.bytes and not self._fits(nbytes - reservation.bytes):
                if cancelled is not None and cancelled.is_set():
                    raise RequestCancelled("The request was cancelled while it waited for memory for its audio.")
                if not collected:
                    collected = True
                    gc.collect()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._full(nbytes - reservation.bytes, reservation.input)
                self._changed.wait(min(remaining, 0.1) if cancelled is not None else remaining)
            change = nbytes - reservation.bytes
            self._held += change  # a finalizer run in between gives back another reservation: its own change
            reservation.bytes += change
            metrics.AUDIO_MEMORY_BYTES.set(self._held)
            self._changed.notify_all()

    def _fits(self, more: int) -> bool:
        return self.limit_bytes is None or self._held + more <= self.limit_bytes

    def _full(self, more: int, input: str) -> OverloadedError:
        assert self.limit_bytes is not None
        return OverloadedError(
            f"The server holds as much decoded audio as its memory budget allows ({self.limit_bytes / MIB:.0f} MiB, "
            f"{self._held / MIB:.0f} MiB in use) and this audio needs {more / MIB:.0f} MiB more: try again shortly.",
            input=input,
            code="audio_memory_full",
            retry_after_s=max(self.wait_s, 1.0),
        )

    def _over_limit(self, nbytes: int, input: str) -> TooLargeError:
        assert self.limit_bytes is not None
        return TooLargeError(
            f"The audio takes {nbytes / MIB:.0f} MiB once decoded, more than this server's memory budget for "
            f"decoded audio ({self.limit_bytes / MIB:.0f} MiB): send shorter audio.",
            input=input,
            code="audio_over_memory_budget",
        )


class AudioReservation:
    """Bytes one request's audio holds in the budget. Grown by its owner's thread; given back from any."""

    def __init__(self, budget: AudioMemoryBudget, input: str) -> None:
        self.budget = budget
        self.input = input
        self.bytes = 0

    def cover(
        self, nbytes: int, *, ahead: int = 0, wait: bool = True, cancelled: threading.Event | None = None
    ) -> None:
        """Hold at least ``nbytes``; growing, take up to ``ahead`` more at once if the budget has them free (fewer,
        larger steps). When the budget cannot give ``nbytes``, wait up to its ``wait_s`` (``wait``; setting
        ``cancelled`` ends the wait with ``RequestCancelled``), then raise ``OverloadedError``; more than the whole
        budget raises ``TooLargeError`` at once."""
        if nbytes <= self.bytes:
            return
        limit = self.budget.limit_bytes
        if limit is not None and nbytes > limit:
            raise self.budget._over_limit(nbytes, self.input)
        target = nbytes + ahead if limit is None else min(nbytes + ahead, limit)
        if target > nbytes:
            try:
                self.budget._resize(self, target, collect=False)
                return
            except OverloadedError:
                pass  # no room for the step ahead: what is needed, then
        self.budget._resize(self, nbytes, wait, cancelled)

    def shrink_to(self, nbytes: int) -> None:
        if nbytes < self.bytes:
            self.budget._resize(self, max(nbytes, 0))

    def release(self) -> None:
        """Give everything back; again is a no-op."""
        self.shrink_to(0)

    def hold(self, audio: np.ndarray) -> np.ndarray:
        """Hold exactly ``audio``'s bytes until ``audio`` is freed (its views keep it alive), then give them back.
        ``audio`` must own its samples: a copy, or the decoder's output."""
        assert audio.flags.owndata, "a reservation holds an array that owns its memory, not a view"
        self.cover(audio.nbytes, wait=False)
        self.shrink_to(audio.nbytes)
        weakref.finalize(audio, self.release)
        return audio
