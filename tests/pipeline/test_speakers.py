from __future__ import annotations

import numpy as np
import pytest

from core.audio import SAMPLE_RATE
from core.errors import ErrorKind, InvalidInputError
from core.types import DiarizeOptions, Segment, SpeakerTurn, Transcription, TranscribeOptions, Word
from pipeline.longform import Clip, stitch
from pipeline.speakers import assign_speakers, attribute_speakers
from tests.fakes import FakeDiarizer, FakeModels

TURNS = [
    SpeakerTurn("SPEAKER_00", 0.0, 4.0),
    SpeakerTurn("SPEAKER_01", 4.0, 8.0),
    SpeakerTurn("SPEAKER_00", 9.0, 12.0),
]


def segment(id: int, start: float, end: float, text: str, words: list[tuple[float, float, str]] = ()) -> Segment:
    return Segment(id=id, start=start, end=end, text=text, words=[Word(start=a, end=b, word=w) for a, b, w in words])


def test_each_word_gets_the_speaker_it_overlaps_most():
    seg = segment(0, 3.0, 6.0, " so then yes", [(3.0, 3.5, " so"), (3.8, 4.6, " then"), (5.0, 5.5, " yes")])
    [result] = assign_speakers([seg], TURNS)
    assert [w.speaker for w in result.words] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_01"]
    assert [w.word for w in result.words] == [" so", " then", " yes"]
    assert result.speaker == "SPEAKER_01"  # 1.1 s of its words against 0.5 s


def test_text_overlapping_no_turn_has_no_speaker():
    # Was: the nearest turn's speaker (SPEAKER_01, SPEAKER_00; SPEAKER_00 for " bye" and SPEAKER_01 for " hm"),
    # a turn the text does not overlap.
    seg = segment(0, 8.0, 9.0, " um uh", [(8.1, 8.3, " um"), (8.7, 8.9, " uh")])
    [result] = assign_speakers([seg], TURNS)
    assert result.speaker is None and [w.speaker for w in result.words] == [None, None]
    [late] = assign_speakers([segment(1, 20.0, 21.0, " bye", [(20.0, 21.0, " bye")])], TURNS)
    assert late.speaker is late.words[0].speaker is None
    [hm] = assign_speakers([segment(2, 8.2, 8.4, " hm")], TURNS)
    assert hm.speaker is None


def test_a_word_in_a_pause_goes_with_its_nearer_neighbour_in_the_segment():
    seg = segment(0, 1.0, 9.0, " one two three four",
                  [(1.0, 3.9, " one"), (4.1, 4.3, " two"), (7.7, 7.9, " three"), (8.2, 9.0, " four")])
    [result] = assign_speakers([seg], [SpeakerTurn("A", 0.0, 4.0), SpeakerTurn("B", 8.0, 10.0)])
    assert [w.speaker for w in result.words] == ["A", "A", "B", "B"]
    [alone] = assign_speakers([segment(1, 4.1, 6.0, " so", [(4.1, 4.3, " so")])], [SpeakerTurn("A", 0.0, 4.5)])
    assert alone.speaker == alone.words[0].speaker == "A"  # no word overlaps a turn: the segment's speaker


def test_a_word_in_a_pause_never_takes_a_turn_it_only_touches():
    """Was: " um" went to B's turn (the nearest, which it only touches), splitting the segment into A, B, A."""
    turns = [SpeakerTurn("A", 0.0, 4.0), SpeakerTurn("B", 4.8, 4.95), SpeakerTurn("A", 5.0, 7.0)]
    transcript = Transcription(
        text="so um yes", language="en", duration=7.0,
        segments=[segment(0, 3.0, 6.0, " so um yes", [(3.0, 3.9, " so"), (4.6, 4.8, " um"), (5.0, 6.0, " yes")])],
    )
    [whole] = attribute_speakers(transcript, turns, keep_words=True).segments
    assert whole.speaker == "A" and [w.speaker for w in whole.words] == ["A", "A", "A"]


def test_cutting_at_turn_boundaries_never_makes_a_zero_length_piece():
    """Was: the zero-length " uh" inside B's turn went to B and became a piece 4.5-4.5 of its own."""
    turns = [SpeakerTurn("A", 0.0, 4.2), SpeakerTurn("B", 4.2, 4.8), SpeakerTurn("A", 4.8, 8.0)]
    transcript = Transcription(
        text="so uh yes", language="en", duration=8.0,
        segments=[segment(0, 3.0, 6.0, " so uh yes", [(3.0, 3.9, " so"), (4.5, 4.5, " uh"), (5.0, 6.0, " yes")])],
    )
    [whole] = attribute_speakers(transcript, turns, keep_words=False).segments
    assert (whole.speaker, whole.start, whole.end, whole.text) == ("A", 3.0, 6.0, " so uh yes")


def test_every_piece_overlaps_a_turn_of_its_speaker_and_lasts():
    """Random turns and words (a tenth of them lasting nothing): each speaker segment overlaps one of its
    speaker's turns (a segment without a speaker overlaps none), lasts, and the text is the transcript's."""
    rng = np.random.default_rng(26)
    for _ in range(200):
        bounds = np.sort(rng.uniform(0.0, 20.0, size=2 * rng.integers(1, 6)))
        turns = [SpeakerTurn(str(rng.choice(["A", "B", "C"])), float(a), float(b)) for a, b in bounds.reshape(-1, 2)]
        times = np.round(np.sort(rng.uniform(0.0, 20.0, size=2 * rng.integers(1, 12))), 2).reshape(-1, 2)
        spans = [(float(a), float(a if rng.random() < 0.1 else b)) for a, b in times]
        if all(b <= a for a, b in spans):
            continue
        words = [(a, b, f" w{i}") for i, (a, b) in enumerate(spans)]
        text = "".join(w for _, _, w in words)
        transcript = Transcription(
            text=text.strip(), language="en", duration=20.0,
            segments=[segment(0, spans[0][0], max(b for _, b in spans), text, words)],
        )
        pieces = attribute_speakers(transcript, turns, keep_words=True).segments
        assert "".join(p.text for p in pieces) == text
        for piece in pieces:
            assert piece.end > piece.start, (turns, words, pieces)
            overlap = sum(max(0.0, min(piece.end, t.end) - max(piece.start, t.start))
                          for t in turns if piece.speaker in (None, t.speaker))
            assert overlap > 0 if piece.speaker else overlap == 0, (turns, words, piece)


def test_overlapping_turns():
    turns = [SpeakerTurn("A", 0.0, 5.0), SpeakerTurn("B", 1.0, 2.0), SpeakerTurn("B", 2.5, 3.5)]
    [result] = assign_speakers([segment(7, 0.5, 3.5, "x", [(1.0, 3.5, "x")])], turns)
    assert result.id == 7
    assert result.words[0].speaker == "A"  # 2.5 s of A against 2.0 s of B


def test_no_turns_leaves_speakers_unknown():
    [result] = assign_speakers([segment(0, 0.0, 1.0, " a", [(0.0, 1.0, " a")])], [])
    assert result.speaker is None and result.words[0].speaker is None


def _transcript() -> Transcription:
    return Transcription(
        text="hello there general kenobi",
        language="en",
        duration=4.0,
        segments=[
            Segment(id=0, start=0.0, end=1.8, text=" hello there",
                    words=[Word(start=0.1, end=0.6, word=" hello"), Word(start=0.7, end=1.7, word=" there")]),
            Segment(id=1, start=2.1, end=3.9, text=" general kenobi",
                    words=[Word(start=2.1, end=2.9, word=" general"), Word(start=3.0, end=3.9, word=" kenobi")]),
        ],
    )


def test_speakers_are_attributed_to_segments_and_words():
    turns = FakeDiarizer(None, None, FakeModels()).diarize(None)
    labelled = attribute_speakers(_transcript(), turns, keep_words=True)
    assert [s.speaker for s in labelled.segments] == ["SPEAKER_00", "SPEAKER_01"]
    assert [w.speaker for s in labelled.segments for w in s.words] == ["SPEAKER_00"] * 2 + ["SPEAKER_01"] * 2
    dropped = attribute_speakers(_transcript(), turns, keep_words=False)
    assert all(s.words == [] and s.speaker for s in dropped.segments)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"num_speakers": 0}, "num_speakers"), ({"max_speakers": 99}, "max_speakers"),
     ({"min_speakers": 3, "max_speakers": 2}, "min_speakers")],
)
def test_invalid_speaker_counts_are_invalid_input(kwargs, param):
    with pytest.raises(InvalidInputError) as info:
        DiarizeOptions(**kwargs)
    assert info.value.input == param and info.value.kind is ErrorKind.INVALID_INPUT


def test_a_segment_spanning_two_speakers_is_split_at_the_change():
    transcript = Transcription(
        text="yes I agree", language="en", duration=4.0,
        segments=[Segment(id=0, start=1.0, end=3.0, text=" yes I agree", tokens=[1, 2, 3],
                          words=[Word(start=1.0, end=1.5, word=" yes"), Word(start=2.2, end=2.5, word=" I"),
                                 Word(start=2.6, end=3.0, word=" agree")])],
    )
    labelled = attribute_speakers(transcript, FakeDiarizer(None, None, FakeModels()).diarize(None), keep_words=False)
    assert [(s.id, s.speaker, s.text, s.start, s.end) for s in labelled.segments] == [
        (0, "SPEAKER_00", " yes", 1.0, 1.5),
        (1, "SPEAKER_01", " I agree", 2.2, 3.0),
    ]
    assert all(s.tokens == [] and s.words == [] for s in labelled.segments)


def test_a_word_clamped_to_its_clips_end_keeps_a_duration_and_the_turn_it_overlaps():
    """Whisper timed " Okay." past the end of its clip; clamped there it lasted nothing and, touching two turns
    and overlapping neither, went to whichever came first: a zero-length segment 9.89-9.89 "Okay."."""
    words = [(8.0, 9.5, " So."), (9.89, 10.4, " Okay.")]
    result = Transcription(
        text="So. Okay.", language="en", duration=9.89,
        segments=[segment(0, 8.0, 10.4, " So. Okay.", words)],
    )
    whole = stitch(20 * SAMPLE_RATE, [Clip(0, int(9.89 * SAMPLE_RATE))], [result], TranscribeOptions())
    turns = [
        SpeakerTurn("SPEAKER_00", 7.5, 9.0), SpeakerTurn("SPEAKER_01", 9.0, 9.89), SpeakerTurn("SPEAKER_00", 9.89, 12)
    ]
    diarized = attribute_speakers(whole, turns, keep_words=True)
    assert "".join(s.text for s in diarized.segments).strip() == whole.text
    spans = [(s.start, s.end) for s in diarized.segments]
    spans += [(w.start, w.end) for s in diarized.segments for w in s.words]
    assert all(end > start for start, end in spans), spans
    okay = diarized.segments[-1]
    assert okay.text == " Okay." and okay.speaker == "SPEAKER_01" and okay.start < 9.89
