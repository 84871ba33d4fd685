from __future__ import annotations

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


def test_words_in_no_turn_go_to_the_nearest_turn():
    seg = segment(0, 8.0, 9.0, " um uh", [(8.1, 8.3, " um"), (8.7, 8.9, " uh")])
    [result] = assign_speakers([seg], TURNS)
    assert [w.speaker for w in result.words] == ["SPEAKER_01", "SPEAKER_00"]
    [late] = assign_speakers([segment(1, 20.0, 21.0, " bye", [(20.0, 21.0, " bye")])], TURNS)
    assert late.speaker == late.words[0].speaker == "SPEAKER_00"


def test_segment_without_words_takes_the_most_overlapping_speaker():
    results = assign_speakers([segment(0, 3.0, 7.0, " hi"), segment(1, 8.2, 8.4, " hm")], TURNS)
    assert [r.speaker for r in results] == ["SPEAKER_01", "SPEAKER_01"]
    assert results[0] == Segment(id=0, start=3.0, end=7.0, text=" hi", speaker="SPEAKER_01", words=[])


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
