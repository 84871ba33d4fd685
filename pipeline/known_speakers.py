"""Known speakers (OpenAI's ``known_speaker_names[]`` with ``known_speaker_references[]``): a diarized speaker whose
voice matches a reference clip takes that reference's name; the other speakers keep their generated labels.

The diarizer embeds each reference clip and each diarized speaker's own speech (``Diarizer.embed_voice``); speakers
and references are paired one to one for the highest total cosine similarity (the Hungarian method), and a pair
holds only at or above the diarizer's measured ``same_voice_similarity``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.audio import SAMPLE_RATE
from core.types import DiarizeOptions, SpeakerTurn

from .pool import ModelLease

MAX_SPEAKER_SPEECH_S = 30.0
"""A diarized speaker is embedded from at most this much of its speech, its longest turns first."""


def diarize_naming_known_speakers(lease: ModelLease, audio: np.ndarray, options: DiarizeOptions) -> list[SpeakerTurn]:
    """The diarizer's turns, with the turns of each known speaker's voice under that speaker's name."""
    known = options.known_speakers
    if not known:
        return lease.diarize(audio, options)
    # The references first: a diarizer that embeds no voices refuses before it spends a diarization.
    references = lease.embed_voices([speaker.audio for speaker in known])
    turns = lease.diarize(audio, options)
    speech = speaker_speech(turns, audio)
    if not speech:
        return turns
    threshold = lease.diarizer.same_voice_similarity
    if threshold is None:
        raise RuntimeError(f"{type(lease.diarizer).__name__} embeds voices but has no same_voice_similarity")
    similarities = lease.embed_voices(list(speech.values())) @ references.T
    labels = list(speech)
    names = {labels[speaker]: known[reference].name for speaker, reference in matched_pairs(similarities, threshold)}
    return [SpeakerTurn(names.get(t.speaker, t.speaker), t.start, t.end) for t in turns]


def speaker_speech(
    turns: list[SpeakerTurn], audio: np.ndarray, max_s: float = MAX_SPEAKER_SPEECH_S
) -> dict[str, np.ndarray]:
    """Each speaker's own speech: its longest turns joined, up to ``max_s`` seconds (the last one cut short), with
    the stretches where somebody else speaks too left out."""
    by_speaker: dict[str, list[SpeakerTurn]] = {}
    for turn in solo_turns(turns):
        by_speaker.setdefault(turn.speaker, []).append(turn)
    speech = {}
    for speaker, own in by_speaker.items():
        pieces, left = [], int(max_s * SAMPLE_RATE)
        for turn in sorted(own, key=lambda t: t.duration, reverse=True):
            piece = audio[int(turn.start * SAMPLE_RATE) : int(turn.end * SAMPLE_RATE)][:left]
            pieces.append(piece)
            left -= piece.size
            if left <= 0:
                break
        if sum(piece.size for piece in pieces):
            speech[speaker] = np.concatenate(pieces)
    return speech


def solo_turns(turns: list[SpeakerTurn]) -> list[SpeakerTurn]:
    """``turns`` cut where they overlap, keeping only the stretches with one speaker."""
    edges = sorted({t.start for t in turns} | {t.end for t in turns})
    starting: dict[float, list[SpeakerTurn]] = {}
    for turn in turns:
        starting.setdefault(turn.start, []).append(turn)
    active: list[SpeakerTurn] = []
    solo: list[SpeakerTurn] = []
    for start, end in zip(edges, edges[1:]):
        active = [t for t in active if t.end > start] + starting.get(start, [])
        speakers = {t.speaker for t in active}
        if len(speakers) == 1:
            (speaker,) = speakers
            if solo and solo[-1].speaker == speaker and solo[-1].end == start:
                solo[-1] = SpeakerTurn(speaker, solo[-1].start, end)
            else:
                solo.append(SpeakerTurn(speaker, start, end))
    return solo


def matched_pairs(similarities: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(speaker, reference) index pairs of a (speakers, references) similarity matrix: one to one, for the highest
    total similarity, each pair at least ``threshold`` similar."""
    speakers, references = linear_sum_assignment(similarities, maximize=True)
    return [(int(s), int(r)) for s, r in zip(speakers, references, strict=True) if similarities[s, r] >= threshold]
