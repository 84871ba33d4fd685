"""The two policies of live transcription that need no model pool: when a turn starts and stops (voice
activity, window by window), and which words of a partial hypothesis are settled enough to send.

- ``TurnDetector``: Silero VAD (``core.vad``) over 32 ms windows as audio arrives, with a session's
  ``VadSettings``. Speech starts at the first window at or above ``threshold``; it stops once
  ``silence_duration_ms`` of windows fall below ``pause_threshold`` (``threshold - 0.15``, Silero's own
  hysteresis) with no speech window among them.
- ``LocalAgreement``: the LocalAgreement-2 policy of whisper-streaming (Machacek et al., 2023). A turn's
  audio is decoded again as it grows; a word is confirmed once two consecutive hypotheses agree on it and on
  everything before it. Confirmed words are never taken back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.vad import WINDOW_SAMPLES as WINDOW
from core.vad import VadSettings, window_probabilities

_CONTEXT = WINDOW

SpeechProbabilities = Callable[[np.ndarray], np.ndarray]


def silero_probabilities(windows: np.ndarray) -> np.ndarray:
    """Speech probability of each 512-sample window but the first, which is only context for the second."""
    return window_probabilities(windows)[1:]


@dataclass(frozen=True)
class SpeechEdge:
    """Speech started or stopped at ``sample`` (counted from the first sample the detector was fed)."""

    started: bool
    sample: int


class TurnDetector:
    def __init__(self, params: VadSettings, probabilities: SpeechProbabilities = silero_probabilities) -> None:
        self.params = params
        self._probabilities = probabilities
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self.position = 0
        """Samples judged so far (whole windows)."""
        self.in_speech = False
        self._silence = 0

    def feed(self, samples: np.ndarray) -> list[SpeechEdge]:
        """Edges found in the whole windows that ``samples`` complete."""
        audio = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        whole = len(audio) // WINDOW * WINDOW
        self._pending = np.array(audio[whole:], dtype=np.float32)
        if not whole:
            return []
        windows = np.asarray(audio[:whole], dtype=np.float32)
        probabilities = self._probabilities(np.concatenate([self._context, windows]))
        self._context = windows[-_CONTEXT:].copy()
        edges = []
        for probability in probabilities:
            edge = self._judge(float(probability))
            self.position += WINDOW
            if edge is not None:
                edges.append(edge)
        return edges

    def reset(self) -> None:
        """Forget the current speech (after a manual commit or a clear); the timeline goes on."""
        self.in_speech = False
        self._silence = 0

    def _judge(self, probability: float) -> SpeechEdge | None:
        if not self.in_speech:
            if probability >= self.params.threshold:
                self.in_speech, self._silence = True, 0
                return SpeechEdge(True, self.position)
            return None
        if probability >= self.params.threshold:
            self._silence = 0
        elif probability < self.params.pause_threshold:
            self._silence += WINDOW
            if self._silence >= self.params.silence_samples:
                self.in_speech, self._silence = False, 0
                return SpeechEdge(False, self.position + WINDOW)
        return None


_PUNCTUATION = re.compile(r"[^\w']+")


def _key(word: str) -> str:
    return _PUNCTUATION.sub("", word.lower())


class LocalAgreement:
    """Confirms the words two consecutive hypotheses share as a prefix; ``update`` returns the new ones."""

    def __init__(self) -> None:
        self.confirmed: list[str] = []
        self._previous: list[str] | None = None

    def update(self, hypothesis: str) -> list[str]:
        words = hypothesis.split()
        previous, self._previous = self._previous, words
        if previous is None:
            return []
        agreed = 0
        for before, now in zip(previous, words):
            if _key(before) != _key(now):
                break
            agreed += 1
        if agreed <= len(self.confirmed):
            return []
        if any(_key(sent) != _key(now) for sent, now in zip(self.confirmed, words)):
            return []  # the hypotheses moved away from what was sent: wait until they agree with it again
        new = words[len(self.confirmed) : agreed]
        self.confirmed.extend(new)
        return new

    def rest(self, final: str) -> str:
        """The delta that completes the confirmed text to ``final``; empty when ``final`` contradicts it."""
        words = final.split()
        if len(words) <= len(self.confirmed) or any(
            _key(sent) != _key(now) for sent, now in zip(self.confirmed, words)
        ):
            return ""
        new = words[len(self.confirmed) :]
        self.confirmed.extend(new)
        return self.delta(new)

    def delta(self, new_words: list[str]) -> str:
        """The text to send for ``new_words`` just confirmed: deltas concatenate to the confirmed text."""
        text = " ".join(new_words)
        return text if len(self.confirmed) == len(new_words) else " " + text
