"""How fast a live session's audio is taken in: no faster than ``speed`` times real time once an allowance of
``burst_s`` seconds is spent (a token bucket of audio seconds), so that one session sending minutes of audio in
seconds cannot flood the model with turns."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class AudioPacer:
    """``speed`` 0: no bound."""

    def __init__(self, speed: float, burst_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self.burst_s = burst_s
        self._clock = clock
        self._allowance = burst_s
        self._at = clock()

    def wait_s(self, seconds: float) -> float:
        """How long until ``seconds`` of audio may be taken: 0 for now, infinity for more than ``burst_s`` at once."""
        if not self.speed:
            return 0.0
        if seconds > self.burst_s:
            return math.inf
        self._refill()
        return max(0.0, (seconds - self._allowance) / self.speed)

    def take(self, seconds: float) -> None:
        if self.speed:
            self._refill()
            self._allowance -= seconds

    def _refill(self) -> None:
        now = self._clock()
        self._allowance = min(self.burst_s, self._allowance + (now - self._at) * self.speed)
        self._at = now
