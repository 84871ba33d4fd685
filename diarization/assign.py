"""Give transcript words and segments the speaker of the diarization turns they fall in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import SpeakerTurn

_MIN_WEIGHT_S = 1e-3  # so that zero-length words still count when a segment's words vote


@dataclass
class AttributedWord:
    start: float
    end: float
    word: str
    speaker: str | None
    probability: float | None = None


@dataclass
class AttributedSegment:
    id: int
    start: float
    end: float
    text: str
    speaker: str | None
    words: list[AttributedWord] = field(default_factory=list)


def assign_speakers(segments: Iterable[Any], turns: Sequence[SpeakerTurn]) -> list[AttributedSegment]:
    """Attribute every word and segment of a transcript to a speaker.

    ``segments`` are shaped like ``stt.results.Segment`` (objects or dicts with ``start``,
    ``end``, ``text`` and ``words``, each word with ``start``, ``end`` and ``word``). A word gets
    the speaker whose turns overlap it longest, or, overlapping none, the speaker of the nearest
    turn. A segment gets the speaker holding most of its words' duration, or, without words, the
    one overlapping it longest (else the nearest). With no turns at all every speaker is None.
    """
    lookup = _TurnLookup(turns)
    attributed = []
    for index, segment in enumerate(segments):
        words = [
            AttributedWord(
                start=float(_get(w, "start")),
                end=float(_get(w, "end")),
                word=str(_get(w, "word", "")),
                speaker=None,
                probability=_get(w, "probability"),
            )
            for w in _get(segment, "words") or []
        ]
        start, end = float(_get(segment, "start")), float(_get(segment, "end"))
        for word, speaker in zip(words, lookup.speakers_of([(w.start, w.end) for w in words]), strict=True):
            word.speaker = speaker
        attributed.append(
            AttributedSegment(
                id=int(_get(segment, "id", index)),
                start=start,
                end=end,
                text=str(_get(segment, "text", "")),
                speaker=_majority(words) if words else lookup.speakers_of([(start, end)])[0],
                words=words,
            )
        )
    return attributed


def speaker_turns_with_text(segments: Iterable[Any]) -> list[dict[str, Any]]:
    """Consecutive segments of one speaker joined into ``{"speaker", "start", "end", "text"}``
    records, one per line of a JSON-lines download."""
    records: list[dict[str, Any]] = []
    for segment in segments:
        speaker, text = _get(segment, "speaker"), str(_get(segment, "text", "")).strip()
        start, end = float(_get(segment, "start")), float(_get(segment, "end"))
        if records and records[-1]["speaker"] == speaker:
            last = records[-1]
            last["end"] = max(last["end"], end)
            last["text"] = f"{last['text']} {text}".strip()
        else:
            records.append({"speaker": speaker, "start": start, "end": end, "text": text})
    return records


class _TurnLookup:
    """Vectorised overlap and distance between time spans and the turns of each speaker."""

    def __init__(self, turns: Sequence[SpeakerTurn]) -> None:
        self.names: list[str] = list(dict.fromkeys(t.speaker for t in turns))  # first-appearance order
        index = {name: i for i, name in enumerate(self.names)}
        self.starts = np.array([t.start for t in turns], dtype=np.float64)
        self.ends = np.array([t.end for t in turns], dtype=np.float64)
        self.owner = np.array([index[t.speaker] for t in turns], dtype=np.int64)

    def speakers_of(self, spans: Sequence[tuple[float, float]]) -> list[str | None]:
        if not spans:
            return []
        if not self.names:
            return [None] * len(spans)
        s = np.array([a for a, _ in spans], dtype=np.float64)[:, None]
        e = np.array([b for _, b in spans], dtype=np.float64)[:, None]
        overlap = np.clip(np.minimum(e, self.ends) - np.maximum(s, self.starts), 0.0, None)
        per_speaker = np.zeros((len(spans), len(self.names)))
        for i in range(len(self.names)):
            per_speaker[:, i] = overlap[:, self.owner == i].sum(axis=1)
        gap = np.maximum(np.maximum(self.starts - e, s - self.ends), 0.0)
        nearest = self.owner[np.argmin(gap, axis=1)]
        best = np.where(per_speaker.max(axis=1) > 0, per_speaker.argmax(axis=1), nearest)
        return [self.names[i] for i in best]


def _majority(words: list[AttributedWord]) -> str | None:
    """The speaker holding the largest share of the words' duration (the earliest one on a tie)."""
    weights: dict[str | None, float] = {}
    for word in words:
        weights[word.speaker] = weights.get(word.speaker, 0.0) + max(word.end - word.start, _MIN_WEIGHT_S)
    return max(weights, key=weights.__getitem__)


def _get(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)
