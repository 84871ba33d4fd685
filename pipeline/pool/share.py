"""One request's share of a model: the audio it brought, and how much of it the batcher has taken so far."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(eq=False)
class Share:
    """The batcher serves first the requests that have had the least (``taken_s``, which it counts under its own
    lock); admission counts what the requests admitted have left (``remaining_s``). ``work_s`` is 0 for a request
    that said nothing of its audio (a live turn, the start-up check): it is scheduled fairly but not counted."""

    work_s: float = 0.0
    """Seconds of audio the request brought."""
    taken_s: float = 0.0
    """Seconds of its audio the batcher has taken into batches."""

    @property
    def remaining_s(self) -> float:
        return max(self.work_s - self.taken_s, 0.0)
