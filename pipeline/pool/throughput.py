"""A model's decoding speed, measured on its own batches as they run: seconds of audio decoded per second."""

from __future__ import annotations

import threading

DECAY = 0.9
"""Each batch keeps this much of what was measured before it: the speed follows the last few tens of batches."""


class Throughput:
    """The audio seconds per second one model decodes with all its workers busy: a decayed sum of the audio its
    batches decoded over a decayed sum of the time they took (long batches count for more than short ones), times
    the workers that decode batches in parallel. Unknown (None) until a batch has run."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(workers, 1)
        self._audio_s = 0.0
        self._busy_s = 0.0
        self._lock = threading.Lock()

    def record(self, audio_s: float, elapsed_s: float) -> None:
        """One batch: ``audio_s`` seconds of audio decoded in ``elapsed_s`` seconds on one worker."""
        if audio_s <= 0 or elapsed_s <= 0:
            return
        with self._lock:
            self._audio_s = self._audio_s * DECAY + audio_s
            self._busy_s = self._busy_s * DECAY + elapsed_s

    @property
    def audio_s_per_s(self) -> float | None:
        with self._lock:
            if self._busy_s <= 0:
                return None
            return self._audio_s / self._busy_s * self.workers
