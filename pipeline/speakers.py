"""Speaker attribution: give transcript words and segments the speaker of the diarization turns they fall in
(WhisperX-style), then split segments where the speaker changes."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

import numpy as np

from core.types import Segment, SpeakerTurn, Transcription, Word

_MIN_WEIGHT_S = 1e-3  # so that zero-length words still count when a segment's words vote


def assign_speakers(segments: Sequence[Segment], turns: Sequence[SpeakerTurn]) -> list[Segment]:
    """Every word and segment of a transcript with the speaker of a turn it overlaps; text overlapping no turn
    is never given a turn it does not overlap.

    A word gets the speaker whose turns overlap it longest. A word overlapping no turn (in a pause between turns,
    or lasting nothing) goes with the nearer of its neighbours in the segment that do overlap one (the one before
    on a tie), so it never starts a speaker change of its own. A segment gets the speaker holding most of its words'
    duration; a segment none of whose words overlaps a turn (or without words) gets, with its words, the speaker
    overlapping the segment longest, or none (None) when no turn overlaps it. With no turns every speaker is None.
    """
    lookup = _TurnLookup(turns)
    attributed = []
    for segment in segments:
        own = _with_neighbours(segment.words, lookup.speakers_of([(w.start, w.end) for w in segment.words]))
        if not any(own):
            own = lookup.speakers_of([(segment.start, segment.end)]) * len(segment.words)
        words = [w.model_copy(update={"speaker": s}) for w, s in zip(segment.words, own, strict=True)]
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
                "start": min(w.start for w in run),
                "end": max(w.end for w in run),
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
        """For each span, the speaker whose turns overlap it longest; None for a span that overlaps no turn."""
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
        best = per_speaker.argmax(axis=1)
        return [self.names[i] if overlaps else None for i, overlaps in zip(best, per_speaker.max(axis=1) > 0)]


def _with_neighbours(words: Sequence[Word], speakers: Sequence[str | None]) -> list[str | None]:
    """``speakers`` (one per word, None where a word overlaps no turn) with each None replaced by the speaker of the
    nearer (in time) of the closest words before and after it that have one; the one before on a tie."""
    known = [i for i, speaker in enumerate(speakers) if speaker is not None]
    if not known:
        return list(speakers)
    filled = list(speakers)
    for i, speaker in enumerate(speakers):
        if speaker is not None:
            continue
        before = max((k for k in known if k < i), default=None)
        after = min((k for k in known if k > i), default=None)
        if before is None or after is None:
            filled[i] = speakers[after if before is None else before]
            continue
        to_before = max(words[i].start - words[before].end, 0.0)
        to_after = max(words[after].start - words[i].end, 0.0)
        filled[i] = speakers[before] if to_before <= to_after else speakers[after]
    return filled


def _majority(words: Sequence[Word]) -> str | None:
    """The speaker holding the largest share of the words' duration (the earliest one on a tie)."""
    weights: dict[str | None, float] = {}
    for word in words:
        weights[word.speaker] = weights.get(word.speaker, 0.0) + max(word.end - word.start, _MIN_WEIGHT_S)
    return max(weights, key=weights.__getitem__)
