"""Timed words grouped into sentence-like segments."""

from __future__ import annotations

import re

from core.types import Segment, Word

_SENTENCE_END = re.compile(r"[.!?…。？！]$")


def segments_from_words(words: list[Word], max_segment_s: float = 30.0) -> list[Segment]:
    """Group timed words into sentence-like segments (at end punctuation or every ``max_segment_s``)."""
    segments: list[Segment] = []
    current: list[Word] = []
    for word in words:
        current.append(word)
        too_long = current[-1].end - current[0].start >= max_segment_s
        if _SENTENCE_END.search(word.word.strip()) or too_long:
            segments.append(_segment_of(len(segments), current))
            current = []
    if current:
        segments.append(_segment_of(len(segments), current))
    return segments


def _segment_of(index: int, words: list[Word]) -> Segment:
    return Segment(
        id=index,
        start=words[0].start,
        end=words[-1].end,
        text="".join(w.word for w in words),
        words=list(words),
    )
