"""The simulated meeting set (``bench.simulated_meetings``): its schedules, rooms and references, on stand-in voices,
and the set itself from the corpus."""

from __future__ import annotations

import numpy as np
import pytest

from bench.der import read_rttm
from bench.simulated_meetings import (
    DISTANCE_M,
    HEAVY_OVERLAP_S,
    HEAVY_OVERLAP_SHARE,
    MEETINGS_PER_COUNT,
    OVERLAP_SHARE,
    SPEAKER_COUNTS,
    build_meetings,
    impulse_response,
    meeting,
    overlap_share,
    speaker_of,
    write_rttm,
)
from core.audio import SAMPLE_RATE


def _voice(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Noise bursts of 0.4 s with 0.1 s pauses: a stand-in for speech with pauses to cut at."""
    burst = np.concatenate([np.ones(int(0.4 * SAMPLE_RATE)), np.zeros(int(0.1 * SAMPLE_RATE))])
    envelope = np.tile(burst, int(seconds / 0.5))
    return (rng.standard_normal(len(envelope)) * envelope * 0.05).astype(np.float32)


def test_speakers_are_read_from_the_corpus_names():
    assert speaker_of("en/ls_to_1688-142285-0000.flac") == "ls1688"
    assert speaker_of("en/long_ls_to_3080-5032-0000_to_0009_concat.flac") == "ls3080"
    assert speaker_of("en/ljspeech_LJ001-0001.flac") == "ljspeech"
    assert speaker_of("en/jfk_inaugural_1961_excerpt.flac") is None  # applause
    assert speaker_of("multi/pyannote_sample.wav") is None and speaker_of("pt/lapsbm_0240.wav") is None


@pytest.mark.parametrize("count", [2, 4, 6])
def test_a_meeting_has_every_speaker_twice_and_overlap_in_range(count):
    rng = np.random.default_rng(count)
    names = [f"s{i}" for i in range(count)]
    pieces = {name: [_voice(rng, rng.uniform(2.0, 6.0)) for _ in range(6)] for name in names}
    audio, turns, share = meeting(names, pieces, rng)
    assert OVERLAP_SHARE[0] <= share <= OVERLAP_SHARE[1]
    assert share == pytest.approx(overlap_share(turns, len(audio) // (SAMPLE_RATE // 100)))
    assert all(sum(t.speaker == name for t in turns) >= 2 for name in names)
    assert all(a.speaker != b.speaker for a, b in zip(turns, turns[1:]) if b.start >= a.end)
    assert max(t.end for t in turns) <= len(audio) / SAMPLE_RATE and np.abs(audio).max() <= 1.0


@pytest.mark.parametrize("count", [3, 5])
def test_a_heavy_overlap_meeting_has_a_third_or_more_of_its_speech_overlapped(count):
    rng = np.random.default_rng(count)
    names = [f"s{i}" for i in range(count)]
    pieces = {name: [_voice(rng, rng.uniform(2.0, 6.0)) for _ in range(8)] for name in names}
    audio, turns, share = meeting(names, pieces, rng, HEAVY_OVERLAP_SHARE, HEAVY_OVERLAP_S)
    assert HEAVY_OVERLAP_SHARE[0] <= share <= HEAVY_OVERLAP_SHARE[1]
    assert share == pytest.approx(overlap_share(turns, len(audio) // (SAMPLE_RATE // 100)))


def test_a_far_talker_is_more_reverberant_and_quieter_than_a_near_one():
    rng = np.random.default_rng(0)
    near, far = impulse_response(DISTANCE_M[0], 0.5, rng), impulse_response(DISTANCE_M[1], 0.5, rng)

    def direct_to_reverberant(response: np.ndarray) -> float:
        peak = int(np.argmax(np.abs(response)))
        return float(response[peak] ** 2 / np.sum(response[peak + 1 :] ** 2))

    assert direct_to_reverberant(near) > 10 * direct_to_reverberant(far)
    assert np.abs(far).max() < np.abs(near).max()
    assert np.argmax(np.abs(far)) > np.argmax(np.abs(near))  # sound takes longer from further away
    tail = np.abs(near[int(0.4 * SAMPLE_RATE) :]).max()
    assert tail < 0.01 * np.abs(near[1 : int(0.05 * SAMPLE_RATE)]).max()  # decays by the reverberation time


def test_rttm_written_is_read_back(tmp_path):
    from core.types import SpeakerTurn

    turns = [SpeakerTurn("ls1688", 0.5, 2.25), SpeakerTurn("ljspeech", 2.0, 4.0)]
    write_rttm(turns, "meeting_00_2spk", tmp_path / "m.rttm")
    assert read_rttm(tmp_path / "m.rttm") == turns
    assert all(len(line.split()) == 10 for line in (tmp_path / "m.rttm").read_text().splitlines())


def test_the_set_from_the_corpus(corpus_dir, tmp_path):
    meetings = build_meetings(tmp_path, corpus_dir)
    assert [m.speakers for m in meetings] == [n for n in SPEAKER_COUNTS for _ in range(MEETINGS_PER_COUNT)]
    for m in meetings:
        reference = read_rttm(m.rttm)
        assert len({t.speaker for t in reference}) == m.speakers, m.name
        assert OVERLAP_SHARE[0] <= m.overlap_share <= OVERLAP_SHARE[1], m.name
        import soundfile

        info = soundfile.info(m.wav)
        assert info.samplerate == SAMPLE_RATE and info.channels == 1
        assert max(t.end for t in reference) <= info.duration
    assert meetings[0].wav.read_bytes() == build_meetings(tmp_path / "again", corpus_dir)[0].wav.read_bytes()
