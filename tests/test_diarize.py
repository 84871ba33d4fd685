from __future__ import annotations

import numpy as np
import pytest

from diarization.base import Diarizer, SpeakerTurn
from stt.diarize import DiarizationRunner, DiarizeOptions, attribute_speakers
from stt.errors import InvalidRequestError, ModelUnavailableError
from stt.results import Segment, Transcription, Word


class FakeDiarizer(Diarizer):
    loads = 0
    fail = False

    def __init__(self) -> None:
        self._loaded = False

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        FakeDiarizer.loads += 1
        if FakeDiarizer.fail:
            raise RuntimeError("pyannote/speaker-diarization-3.1 is not in the Hugging Face cache")
        self._loaded = True

    def diarize(self, audio, *, num_speakers=None, min_speakers=None, max_speakers=None):
        return [SpeakerTurn("SPEAKER_00", 0.0, 2.0), SpeakerTurn("SPEAKER_01", 2.0, 4.0)]

    def unload(self) -> None:
        self._loaded = False


@pytest.fixture(autouse=True)
def _reset():
    FakeDiarizer.loads, FakeDiarizer.fail = 0, False


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
    labelled = attribute_speakers(_transcript(), FakeDiarizer().diarize(None), keep_words=True)
    assert [s.speaker for s in labelled.segments] == ["SPEAKER_00", "SPEAKER_01"]
    assert [w.speaker for s in labelled.segments for w in s.words] == ["SPEAKER_00"] * 2 + ["SPEAKER_01"] * 2
    dropped = attribute_speakers(_transcript(), FakeDiarizer().diarize(None), keep_words=False)
    assert all(s.words == [] and s.speaker for s in dropped.segments)


def test_runner_loads_once_and_maps_failures_to_503():
    runner = DiarizationRunner("embedded", FakeDiarizer)
    audio = np.zeros(16_000, dtype=np.float32)
    runner.diarize(audio, DiarizeOptions())
    runner.diarize(audio, DiarizeOptions(num_speakers=2))
    assert FakeDiarizer.loads == 1 and runner.is_loaded
    runner.unload()
    assert not runner.is_loaded

    FakeDiarizer.fail = True
    failing = DiarizationRunner("pyannote", FakeDiarizer)
    with pytest.raises(ModelUnavailableError) as info:
        failing.diarize(audio, DiarizeOptions())
    assert info.value.status == 503 and "pyannote" in info.value.message and "cache" in info.value.message


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"num_speakers": 0}, "num_speakers"), ({"max_speakers": 99}, "max_speakers"),
     ({"min_speakers": 3, "max_speakers": 2}, "min_speakers")],
)
def test_invalid_speaker_counts_are_400(kwargs, param):
    with pytest.raises(InvalidRequestError) as info:
        DiarizeOptions(**kwargs)
    assert info.value.param == param


def test_a_segment_spanning_two_speakers_is_split_at_the_change():
    transcript = Transcription(
        text="yes I agree", language="en", duration=4.0,
        segments=[Segment(id=0, start=1.0, end=3.0, text=" yes I agree", tokens=[1, 2, 3],
                          words=[Word(start=1.0, end=1.5, word=" yes"), Word(start=2.2, end=2.5, word=" I"),
                                 Word(start=2.6, end=3.0, word=" agree")])],
    )
    labelled = attribute_speakers(transcript, FakeDiarizer().diarize(None), keep_words=False)
    assert [(s.id, s.speaker, s.text, s.start, s.end) for s in labelled.segments] == [
        (0, "SPEAKER_00", " yes", 1.0, 1.5),
        (1, "SPEAKER_01", " I agree", 2.2, 3.0),
    ]
    assert all(s.tokens == [] and s.words == [] for s in labelled.segments)
