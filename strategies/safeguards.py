"""Whisper's safeguards against invented text, as OpenAI's decoder applies them to every 30 s window.

- Temperature fallback: a decoding whose text compresses too well (a repetition loop) or whose tokens are
  unlikely is decoded again at the next temperature, 0.0, 0.2, ... 1.0.
- No-speech: a window the model thinks holds no speech, and whose decoding is unlikely, yields no text. So does
  one whose decoding is a repetition loop: Whisper would retry it at higher temperatures, where sampling on noise
  sooner or later lands on a confident loop (". . . .") that it then keeps; there is no speech to lose.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

TEMPERATURE_STEP = 0.2
MAX_TEMPERATURE = 1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6


def temperature_schedule(start: float | None) -> list[float]:
    """The temperatures to try, from the request's (0 when unset) up to 1.0 in steps of 0.2."""
    first = start or 0.0
    steps = int((MAX_TEMPERATURE - first) / TEMPERATURE_STEP + 1e-9)
    return [round(first + i * TEMPERATURE_STEP, 2) for i in range(max(steps, 0) + 1)]


def compression_ratio(text: str) -> float:
    encoded = text.encode("utf-8")
    return len(encoded) / len(zlib.compress(encoded)) if encoded else 0.0


@dataclass(frozen=True)
class Decoding:
    """One window decoded at one temperature."""

    tokens: list[int]
    text: str
    avg_logprob: float
    no_speech_prob: float
    temperature: float

    @property
    def compression_ratio(self) -> float:
        return compression_ratio(self.text)

    @property
    def is_silence(self) -> bool:
        """The model heard no speech, and what it wrote is unlikely or a loop: the window yields no text."""
        return self.no_speech_prob > NO_SPEECH_THRESHOLD and (
            self.avg_logprob < LOG_PROB_THRESHOLD or self.compression_ratio > COMPRESSION_RATIO_THRESHOLD
        )

    @property
    def needs_fallback(self) -> bool:
        if self.is_silence:
            return False
        return self.compression_ratio > COMPRESSION_RATIO_THRESHOLD or self.avg_logprob < LOG_PROB_THRESHOLD


def best_of_failed(attempts: list[Decoding]) -> Decoding:
    """When every temperature failed: the likeliest decoding that is not a repetition loop, if any."""
    not_looping = [a for a in attempts if a.compression_ratio <= COMPRESSION_RATIO_THRESHOLD]
    return max(not_looping or attempts, key=lambda a: a.avg_logprob)


class Judged(Protocol):
    """A decoding the checks have judged: whether it must be decoded again at the next temperature."""

    @property
    def needs_fallback(self) -> bool: ...


D = TypeVar("D", bound=Judged)


def decode_with_fallback(
    count: int,
    temperatures: Sequence[float],
    decode: Callable[[list[int], float], Sequence[D]],
    best_of: Callable[[list[D]], D],
) -> list[D]:
    """Whisper's temperature fallback over a batch of ``count`` clips: every clip decoded at the first
    temperature, then the clips whose decoding fails the checks together at the next one (``decode(pending,
    temperature)`` decodes the clips at those indices), until they pass or the temperatures run out; a clip that
    fails at every temperature keeps ``best_of`` its attempts."""
    attempts: list[list[D]] = [[] for _ in range(count)]
    chosen: dict[int, D] = {}
    pending = list(range(count))
    for temperature in temperatures:
        for index, decoding in zip(pending, decode(pending, temperature), strict=True):
            attempts[index].append(decoding)
            if not decoding.needs_fallback:
                chosen[index] = decoding
        pending = [index for index in pending if index not in chosen]
        if not pending:
            break
    for index in pending:
        chosen[index] = best_of(attempts[index])
    return [chosen[index] for index in range(count)]
