"""The request's stop strings, applied to text as a model writes it."""

from __future__ import annotations

from collections.abc import Sequence


class StopScanner:
    """Cuts generated text at the first of the request's stop strings (which is not part of the answer).
    Text that may be the start of a stop string is held back until the next piece tells."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of ``text`` (after what was held back) that is certainly answer."""
        if self.stopped:
            return ""
        text = self._held + text
        hits = [text.find(stop) for stop in self.stops if stop in text]
        if hits:
            self.stopped = True
            self._held = ""
            return text[: min(hits)]
        keep = next(
            (n for n in range(min(len(text), max(map(len, self.stops), default=1) - 1), 0, -1)
             if any(stop.startswith(text[-n:]) for stop in self.stops)),
            0,
        )
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep]

    def flush(self) -> str:
        """What was held back, once the text has ended without a stop string."""
        held, self._held = self._held, ""
        return "" if self.stopped else held
