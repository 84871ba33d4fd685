"""Shared by the engine tests: decoding clips in one batch must give what decoding each alone gives."""

from __future__ import annotations

from bench.corpus import Utterance
from stt.audio import decode_audio
from stt.results import TranscribeOptions
from strategies.base import ASRStrategy


def batched_and_alone(strategy: ASRStrategy, utterances: list[Utterance], count: int = 6) -> tuple[list[str], list[str]]:
    """Texts of ``count`` corpus clips of different lengths decoded together, then one at a time."""
    chosen = sorted(utterances, key=lambda u: u.duration_s)[:: max(len(utterances) // count, 1)][:count]
    clips = [decode_audio(u.path) for u in chosen]
    options = TranscribeOptions()
    together = [result.text for result in strategy.transcribe_clips(clips, options)]
    alone = [strategy.transcribe_clips([clip], options)[0].text for clip in clips]
    return together, alone
