"""``pipeline/known_speakers.py``: diarized speakers named after the references their voices match; the matching
on synthetic embeddings, then the embedded diarizer on real LibriSpeech voices."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from core.audio import SAMPLE_RATE, decode_audio
from core.errors import InvalidInputError
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from core.types import DiarizeOptions, KnownSpeaker, SpeakerTurn
from pipeline.known_speakers import diarize_naming_known_speakers, matched_pairs, solo_turns, speaker_speech
from pipeline.pool import ModelPool
from strategies.base import RuntimeContext
from strategies.diarization.base import Diarizer
from tests.fakes import FakeDiarizer
from tests.support.audio import tone

SPEC = ModelSpec(id="speakers", engine="embedded_diarizer", model="embedded")


def _named(diarizer: Diarizer, audio: np.ndarray, *known: KnownSpeaker) -> list[SpeakerTurn]:
    pool = ModelPool(ModelRegistry([SPEC]), RuntimeContext("cpu", HubAccess()), factory=lambda spec, runtime: diarizer)
    with pool.use(SPEC) as lease:
        return diarize_naming_known_speakers(lease, audio, DiarizeOptions(known_speakers=known))


def test_pairs_are_one_to_one_for_the_highest_total_similarity():
    assert matched_pairs(np.array([[0.95, 0.2], [0.3, 0.9]]), 0.8) == [(0, 0), (1, 1)]
    # Speaker 0 is closest to reference 1, but giving it reference 0 names both.
    assert matched_pairs(np.array([[0.85, 0.9], [0.1, 0.86]]), 0.8) == [(0, 0), (1, 1)]


def test_pairs_below_the_threshold_are_dropped():
    assert matched_pairs(np.array([[0.79, 0.1], [0.2, 0.81]]), 0.8) == [(1, 1)]
    assert matched_pairs(np.array([[0.5]]), 0.8) == []


def test_more_references_than_speakers_and_more_speakers_than_references():
    assert matched_pairs(np.array([[0.3, 0.9, 0.85]]), 0.8) == [(0, 1)]
    assert matched_pairs(np.array([[0.3], [0.95], [0.9]]), 0.8) == [(1, 0)]


def test_a_speakers_speech_is_its_longest_turns_first_up_to_the_cap():
    audio = np.arange(10 * SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE  # each sample holds its time
    turns = [SpeakerTurn("A", 0.0, 1.0), SpeakerTurn("B", 1.0, 2.0), SpeakerTurn("A", 2.0, 5.0), SpeakerTurn("A", 6.0, 8.0)]
    speech = speaker_speech(turns, audio, max_s=4.0)
    assert list(speech) == ["A", "B"]
    assert speech["A"].size == 4 * SAMPLE_RATE
    assert speech["A"][0] == 2.0 and speech["A"][3 * SAMPLE_RATE] == 6.0  # the 3 s turn, then 1 s of the 2 s one
    assert speaker_speech([SpeakerTurn("A", 20.0, 21.0)], audio) == {}  # past the audio: nothing to embed


def test_overlapped_speech_is_left_out_of_each_speakers_voice():
    turns = [
        SpeakerTurn("A", 0.0, 4.0), SpeakerTurn("B", 3.0, 6.0), SpeakerTurn("A", 5.0, 7.0), SpeakerTurn("C", 8.0, 9.0)
    ]
    assert solo_turns(turns) == [
        SpeakerTurn("A", 0.0, 3.0), SpeakerTurn("B", 4.0, 5.0), SpeakerTurn("A", 6.0, 7.0), SpeakerTurn("C", 8.0, 9.0)
    ]
    audio = np.arange(10 * SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE
    speech = speaker_speech(turns, audio)
    assert speech["A"].size == 4 * SAMPLE_RATE and speech["B"].size == SAMPLE_RATE
    assert speech["B"][0] == 4.0


def test_a_matching_voice_takes_the_name_and_the_others_keep_their_labels(fake_models):
    # The fake diarizer hears SPEAKER_00 in 0-2 s and SPEAKER_01 in 2-4 s; its "voice" is a tone's pitch.
    audio = np.concatenate([tone(2.0), tone(2.0, 660)])
    known = KnownSpeaker("customer", tone(3.0, 660)), KnownSpeaker("ghost", tone(3.0, 1100))
    turns = _named(FakeDiarizer(SPEC, None, fake_models), audio, *known)
    assert [t.speaker for t in turns] == ["SPEAKER_00", "customer"]
    assert [(t.start, t.end) for t in turns] == [(0.0, 2.0), (2.0, 4.0)]


def test_without_known_speakers_no_voice_is_embedded(fake_models):
    class Counting(FakeDiarizer):
        embedded = 0

        def embed_voice(self, audio):
            Counting.embedded += 1
            return super().embed_voice(audio)

    assert [t.speaker for t in _named(Counting(SPEC, None, fake_models), tone(4.0))] == ["SPEAKER_00", "SPEAKER_01"]
    assert Counting.embedded == 0


def test_a_diarizer_that_embeds_no_voices_refuses_before_it_diarizes(fake_models):
    class NoVoices(FakeDiarizer):
        same_voice_similarity = None
        embed_voice = Diarizer.embed_voice
        diarized = 0

        def diarize(self, audio, **counts):
            NoVoices.diarized += 1
            return super().diarize(audio, **counts)

    with pytest.raises(InvalidInputError) as info:
        _named(NoVoices(SPEC, None, fake_models), tone(4.0), KnownSpeaker("agent", tone(3.0)))
    assert info.value.input == "known_speaker_names" and NoVoices.diarized == 0


# The embedded diarizer on real voices: two LibriSpeech speakers back to back, references from *other* utterances.
FIRST = ("ls_to_1688-142285-0000.flac", "ls_to_1688-142285-0006.flac")
SECOND = ("ls_to_2414-128291-0002.flac", "ls_to_2414-128291-0007.flac")
ABSENT = "ls_to_533-1066-0002.flac"


@pytest.fixture
def embedded(embedded_diarizer):
    return embedded_diarizer


@pytest.fixture(scope="module")
def voices(corpus_dir: Path) -> dict[str, np.ndarray]:
    names = [*FIRST, *SECOND, ABSENT]
    missing = [name for name in names if not (corpus_dir / "en" / name).is_file()]
    if missing:
        pytest.skip(f"LibriSpeech utterances {missing} not in the speech corpus at {corpus_dir}")
    return {name: decode_audio(corpus_dir / "en" / name) for name in names}


@pytest.fixture(scope="module")
def recording(voices) -> tuple[np.ndarray, list[SpeakerTurn]]:
    from bench.known_speakers import two_speaker_recording

    return two_speaker_recording(voices[FIRST[0]], voices[SECOND[0]])


def _reference(voices, name: str, file: str) -> KnownSpeaker:
    return KnownSpeaker(name, voices[file][: 8 * SAMPLE_RATE])


def _label_of_each_half(turns: list[SpeakerTurn], truth: list[SpeakerTurn]) -> list[str]:
    labels = []
    for half in truth:
        cover: dict[str, float] = defaultdict(float)
        for turn in turns:
            cover[turn.speaker] += max(0.0, min(turn.end, half.end) - max(turn.start, half.start))
        labels.append(max(cover, key=cover.__getitem__))
    return labels


def test_each_half_of_a_two_speaker_recording_gets_its_speakers_name(embedded, voices, recording):
    audio, truth = recording
    known = (_reference(voices, "agent", FIRST[1]), _reference(voices, "customer", SECOND[1]))
    assert _label_of_each_half(_named(embedded, audio, *known), truth) == ["agent", "customer"]
    # Given in the other order, the names follow the voices, not the order.
    assert _label_of_each_half(_named(embedded, audio, *known[::-1]), truth) == ["agent", "customer"]


def test_an_unknown_voice_keeps_its_generated_label_and_an_absent_speakers_name_is_unused(embedded, voices, recording):
    audio, truth = recording
    turns = _named(embedded, audio, _reference(voices, "agent", FIRST[1]), _reference(voices, "ghost", ABSENT))
    first, second = _label_of_each_half(turns, truth)
    assert first == "agent" and second.startswith("SPEAKER_")
    assert "ghost" not in {t.speaker for t in turns}
