"""Speaker attribution: give transcript words and segments the speaker of the diarization turns they fall in
(WhisperX-style), then split segments where the speaker changes."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

import numpy as np

from core.types import Segment, SpeakerTurn, Transcription, Word

_MIN_WEIGHT_S = 1e-3  # so that zero-length words still count when a segment's words vote


def assign_speakers(segments: Sequence[Segment], turns: Sequence[SpeakerTurn]) -> list[Segment]:
    """Every word and segment of a transcript with a speaker.

    A word gets the speaker whose turns overlap it longest, or, overlapping none, the speaker of the
    nearest turn. A segment gets the speaker holding most of its words' duration, or, without words,
    the one overlapping it longest (else the nearest). With no turns at all every speaker is None.
    """
    lookup = _TurnLookup(turns)
    attributed = []
    for segment in segments:
        speakers = lookup.speakers_of([(w.start, w.end) for w in segment.words])
        words = [w.model_copy(update={"speaker": s}) for w, s in zip(segment.words, speakers, strict=True)]
        speaker = _majority(words) if words else lookup.speakers_of([(segment.start, segment.end)])[0]
        attributed.append(segment.model_copy(update={"speaker": speaker, "words": words}))
    return attributed


def attribute_speakers(result: Transcription, turns: Sequence[SpeakerTurn], keep_words: bool) -> Transcription:
    """The transcript with a speaker on every segment and word, by time overlap with the turns.

    A segment whose words change speaker is split there, so each segment is one speaker's turn.
    """
    segments: list[Segment] = []
    for segment in assign_speakers(result.segments, turns):
        for piece in _split_at_speaker_changes(segment):
            segments.append(piece.model_copy(update={"id": len(segments), "words": piece.words if keep_words else []}))
    return result.model_copy(update={"segments": segments})


def _split_at_speaker_changes(segment: Segment) -> list[Segment]:
    runs = [list(group) for _, group in groupby(segment.words, key=lambda w: w.speaker)]
    if len(runs) <= 1:
        return [segment]
    return [
        segment.model_copy(
            update={
                "start": run[0].start,
                "end": run[-1].end,
                "text": "".join(w.word for w in run),
                "words": run,
                "speaker": run[0].speaker,
                "tokens": [],  # the segment's tokens cannot be split by word
            }
        )
        for run in runs
    ]


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


def _majority(words: Sequence[Word]) -> str | None:
    """The speaker holding the largest share of the words' duration (the earliest one on a tie)."""
    weights: dict[str | None, float] = {}
    for word in words:
        weights[word.speaker] = weights.get(word.speaker, 0.0) + max(word.end - word.start, _MIN_WEIGHT_S)
    return max(weights, key=weights.__getitem__)
