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
from difflib import SequenceMatcher
from functools import cached_property
from typing import Protocol, TypeVar


@dataclass(frozen=True)
class Thresholds:
    """The numbers of Whisper's safeguards: OpenAI's ``transcribe`` defaults, as faster-whisper's
    ``TranscriptionOptions`` carries them."""

    compression_ratio_threshold: float = 2.4
    """Above it a decoding is a repetition loop; the ratio is zlib's on the decoding's text (compression_ratio)."""
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    temperature_step: float = 0.2
    max_temperature: float = 1.0

    def temperatures(self, start: float | None) -> list[float]:
        """The temperatures to try, from the request's (0 when unset) up to the maximum, step by step."""
        first = start or 0.0
        steps = int((self.max_temperature - first) / self.temperature_step + 1e-9)
        return [round(first + i * self.temperature_step, 2) for i in range(max(steps, 0) + 1)]

    def hears_no_speech(self, no_speech_prob: float) -> bool:
        """Whether the model may hear no speech: only then can a decoding be judged silence."""
        return no_speech_prob > self.no_speech_threshold


THRESHOLDS = Thresholds()


def compression_ratio(text: str) -> float:
    """OpenAI's measure of repetition: raw over zlib-compressed size of the text's UTF-8 bytes."""
    encoded = text.encode("utf-8")
    return len(encoded) / len(zlib.compress(encoded)) if encoded else 0.0


@dataclass(frozen=True)
class Decoding:
    """One clip decoded at one temperature, as the judge sees it."""

    tokens: list[int]
    """Text and timestamp tokens, end-of-text excluded."""
    text: str
    """The text tokens decoded (no timestamps or other special tokens), stripped: what the checks read."""
    avg_logprob: float
    """Whisper's average log-probability: over the tokens and the end-of-text token (when the decoding reached it)."""
    no_speech_prob: float
    temperature: float

    @cached_property
    def compression_ratio(self) -> float:
        return compression_ratio(self.text)

    @property
    def loops(self) -> bool:
        return self.compression_ratio > THRESHOLDS.compression_ratio_threshold

    @property
    def is_silence(self) -> bool:
        """The model heard no speech, and what it wrote is unlikely or a loop: the window yields no text."""
        return THRESHOLDS.hears_no_speech(self.no_speech_prob) and (
            self.avg_logprob < THRESHOLDS.log_prob_threshold or self.loops
        )

    @property
    def needs_fallback(self) -> bool:
        if self.is_silence:
            return False
        return self.loops or self.avg_logprob < THRESHOLDS.log_prob_threshold

    @property
    def miss(self) -> float:
        """How far the decoding misses the checks: its compression ratio's excess over the threshold and its
        log-probability's shortfall under the threshold, each as a fraction of its threshold; the larger of the
        two (0 or less: it passes both)."""
        excess = self.compression_ratio / THRESHOLDS.compression_ratio_threshold - 1
        shortfall = self.avg_logprob / THRESHOLDS.log_prob_threshold - 1
        return max(excess, shortfall)


def best_of_failed(attempts: Sequence[Decoding]) -> Decoding:
    """When every temperature failed: the attempt whose words agree most with the other attempts' (``agreement``),
    then the one that misses the checks by the least (``Decoding.miss``), the earliest on a tie.

    Speech that truly repeats (a sentence said three times, a chorus, a list read twice) compresses over the ratio
    threshold at every temperature, so every attempt fails; the attempts then mostly agree on what was said, and the
    outliers are the ones that went wrong: one that invented a further repetition (likelier: each repetition makes
    the next one likelier) and one that lost words (the least repetitive, so the least over the threshold). Neither
    the likeliest attempt nor the least repetitive one is safe, the attempts' consensus is. With two attempts (or
    none agreeing more than another) the smaller miss decides: a likely repetition over an attempt that lost its
    way (a sampled decoding of other words, far under the log-probability threshold)."""
    ranked = sorted(enumerate(attempts), key=lambda pair: (-agreement(pair[1], attempts), pair[1].miss, pair[0]))
    return ranked[0][1]


def agreement(attempt: Decoding, attempts: Sequence[Decoding]) -> float:
    """How much ``attempt``'s words agree with the other attempts': the sum of its word-sequence similarity to each
    (``difflib``'s ratio, 0 to 1), rounded so that float noise does not outrank the checks."""
    words = attempt.text.lower().split()
    others = [other for other in attempts if other is not attempt]
    return round(sum(SequenceMatcher(None, words, other.text.lower().split(), autojunk=False).ratio()
                     for other in others), 6)


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
