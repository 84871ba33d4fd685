from __future__ import annotations

import json

from diarization.assign import AttributedSegment, assign_speakers, speaker_turns_with_text
from diarization.base import SpeakerTurn
from stt.results import Segment, Word

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
    assert results[0] == AttributedSegment(id=0, start=3.0, end=7.0, text=" hi", speaker="SPEAKER_01", words=[])


def test_overlapping_turns_and_dict_input():
    turns = [SpeakerTurn("A", 0.0, 5.0), SpeakerTurn("B", 1.0, 2.0), SpeakerTurn("B", 2.5, 3.5)]
    seg = {"id": 7, "start": 0.5, "end": 3.5, "text": "x", "words": [{"start": 1.0, "end": 3.5, "word": "x"}]}
    [result] = assign_speakers([seg], turns)
    assert result.id == 7
    assert result.words[0].speaker == "A"  # 2.5 s of A against 2.0 s of B


def test_no_turns_leaves_speakers_unknown():
    [result] = assign_speakers([segment(0, 0.0, 1.0, " a", [(0.0, 1.0, " a")])], [])
    assert result.speaker is None and result.words[0].speaker is None


def test_speaker_turns_with_text_merges_consecutive_segments():
    segments = assign_speakers(
        [
            segment(0, 0.0, 2.0, " Hello there."),
            segment(1, 2.0, 3.5, " How are you?"),
            segment(2, 4.5, 7.0, " Fine, thanks."),
            segment(3, 9.5, 11.0, " Good."),
        ],
        TURNS,
    )
    records = speaker_turns_with_text(segments)
    assert records == [
        {"speaker": "SPEAKER_00", "start": 0.0, "end": 3.5, "text": "Hello there. How are you?"},
        {"speaker": "SPEAKER_01", "start": 4.5, "end": 7.0, "text": "Fine, thanks."},
        {"speaker": "SPEAKER_00", "start": 9.5, "end": 11.0, "text": "Good."},
    ]
    lines = "\n".join(json.dumps(r) for r in records).splitlines()
    assert [json.loads(line)["speaker"] for line in lines] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]


def test_speaker_turns_with_text_of_nothing():
    assert speaker_turns_with_text([]) == []
