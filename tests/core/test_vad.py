"""``core/vad.py``: Silero's speech probabilities and cuts, the settings type, its presets and its bounds."""

from __future__ import annotations

import math
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.audio import SAMPLE_RATE, decode_audio
from core.vad import (
    BLOCK_WINDOWS,
    DIARIZATION_VAD,
    HYSTERESIS,
    LONG_FORM_VAD,
    MAX_DURATION_MS,
    OPENAI_SERVER_VAD,
    WINDOW_SAMPLES,
    VadSettings,
    cut_speech,
    speech_spans,
    window_probabilities,
)

PRESETS = [LONG_FORM_VAD, OPENAI_SERVER_VAD, DIARIZATION_VAD]
SILENCE = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)


@pytest.fixture(scope="module")
def corpus_audio(manifest) -> list[np.ndarray]:
    """Every recording of the corpus, decoded."""
    return [decode_audio(utterance.path) for utterance in manifest]


@pytest.fixture(scope="module")
def concatenation(corpus_audio) -> np.ndarray:
    """The whole corpus end to end: 13 minutes, a dozen of Silero's blocks."""
    return np.concatenate(corpus_audio)


@pytest.fixture(scope="module")
def long_file(concatenation) -> np.ndarray:
    """Six and a bit blocks (6.5 minutes) of the concatenation, ending in a partial window."""
    return concatenation[: 6 * BLOCK_WINDOWS * WINDOW_SAMPLES + 1000].copy()


@pytest.fixture(scope="module")
def utterance(corpus_dir: Path) -> np.ndarray:
    """10 s of one LibriSpeech reader, speaking nearly throughout."""
    return decode_audio(corpus_dir / "en" / "ls_tc_1089-134686-0000.flac")


def test_speech_has_high_probabilities_and_silence_and_quiet_noise_low_ones(jfk_audio, utterance):
    speech = window_probabilities(utterance)
    assert speech.dtype == np.float32 and np.median(speech) > 0.9
    assert window_probabilities(jfk_audio).max() > 0.9
    assert window_probabilities(SILENCE).max() < 0.1
    noise = (np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE) * 0.01).astype(np.float32)
    assert window_probabilities(noise).max() < min(preset.threshold for preset in PRESETS)


def test_one_probability_per_window_and_a_partial_last_window_is_zero_padded(utterance):
    assert window_probabilities(utterance).shape == (math.ceil(utterance.size / WINDOW_SAMPLES),)
    piece = utterance[: WINDOW_SAMPLES + 100]
    padded = np.pad(piece, (0, WINDOW_SAMPLES - 100))
    np.testing.assert_array_equal(window_probabilities(piece), window_probabilities(padded))


@pytest.mark.parametrize("preset", PRESETS, ids=["long_form", "openai_server_vad", "diarization"])
def test_cuts_under_each_preset_are_ordered_spans_of_the_audio_and_silence_has_none(jfk_audio, preset):
    spans = speech_spans(jfk_audio, preset)
    assert spans and all(0 <= start < end <= jfk_audio.size for start, end in spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    assert speech_spans(SILENCE, preset) == []


def test_longer_pauses_cut_the_speech_in_fewer_places(jfk_audio):
    """JFK's 11 s have pauses of about 0.3 to 1 s: the long-form preset ends speech at 160 ms of silence, OpenAI's
    at 500 ms, and diarization's fills pauses of up to a second."""
    counts = [len(speech_spans(jfk_audio, preset)) for preset in PRESETS]
    assert counts[0] > counts[1] > counts[2] == 1


def test_padding_and_the_longest_stretch(jfk_audio):
    padded = speech_spans(jfk_audio, OPENAI_SERVER_VAD)
    unpadded = speech_spans(jfk_audio, replace(OPENAI_SERVER_VAD, prefix_padding_ms=0))
    assert unpadded[0][0] - padded[0][0] == OPENAI_SERVER_VAD.prefix_samples
    short = speech_spans(jfk_audio, OPENAI_SERVER_VAD, max_speech_s=2.0)
    assert len(short) > len(padded) and all(end - start <= 2 * SAMPLE_RATE for start, end in short)


def test_the_presets_and_what_they_derive():
    assert OPENAI_SERVER_VAD == VadSettings(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    assert (OPENAI_SERVER_VAD.prefix_samples, OPENAI_SERVER_VAD.silence_samples) == (4800, 8000)
    assert OPENAI_SERVER_VAD.pause_threshold == pytest.approx(0.5 - HYSTERESIS)
    assert (LONG_FORM_VAD.prefix_padding_ms, LONG_FORM_VAD.silence_duration_ms) == (200, 160)
    assert (DIARIZATION_VAD.threshold, DIARIZATION_VAD.pause_threshold) == (0.25, 0.10)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": 1.5}, "threshold must be between 0 and 1."),
        ({"threshold": -0.1}, "threshold must be between 0 and 1."),
        ({"threshold": float("nan")}, "threshold must be between 0 and 1."),
        ({"prefix_padding_ms": -1}, "prefix_padding_ms must not be negative."),
        ({"silence_duration_ms": -300}, "silence_duration_ms must not be negative."),
        ({"min_speech_ms": -1}, "min_speech_ms must not be negative."),
        ({"prefix_padding_ms": 10_001}, "prefix_padding_ms must be at most 10000."),
        ({"silence_duration_ms": 10**9}, "silence_duration_ms must be at most 10000."),
        ({"silence_threshold": 1.5}, "silence_threshold must be between 0 and 1."),
    ],
)
def test_settings_out_of_bounds_are_refused(changes, message):
    with pytest.raises(ValueError) as caught:
        VadSettings(**changes)
    assert str(caught.value) == message


def test_the_bounds_are_inclusive():
    VadSettings(threshold=0.0, prefix_padding_ms=0, silence_duration_ms=0)
    VadSettings(threshold=1.0, silence_threshold=1.0)
    VadSettings(prefix_padding_ms=MAX_DURATION_MS, silence_duration_ms=MAX_DURATION_MS)


def _faster_whisper_options(settings: VadSettings, max_speech_s: float):
    from faster_whisper.vad import VadOptions

    return VadOptions(
        threshold=settings.threshold,
        neg_threshold=settings.silence_threshold,
        min_speech_duration_ms=settings.min_speech_ms,
        max_speech_duration_s=max_speech_s,
        min_silence_duration_ms=settings.silence_duration_ms,
        speech_pad_ms=settings.prefix_padding_ms,
    )


def _faster_whisper_spans(audio: np.ndarray, settings: VadSettings, max_speech_s: float) -> list[tuple[int, int]]:
    """faster-whisper's own cutter over the whole audio at once (it pads a copy; the copy here keeps the caller's
    audio out of its reach)."""
    from faster_whisper.vad import get_speech_timestamps

    options = _faster_whisper_options(settings, max_speech_s)
    return [(s["start"], s["end"]) for s in get_speech_timestamps(audio.copy(), options, sampling_rate=SAMPLE_RATE)]


def test_probabilities_read_block_by_block_are_those_of_the_whole_file_at_once(long_file):
    from faster_whisper.vad import get_vad_model

    for audio in (long_file, long_file[: 3 * BLOCK_WINDOWS * WINDOW_SAMPLES]):  # ragged, and whole blocks
        whole = np.pad(audio, (0, -audio.size % WINDOW_SAMPLES))
        expected = np.asarray(get_vad_model()(whole)).reshape(-1)
        np.testing.assert_array_equal(window_probabilities(audio), expected)


def test_the_long_form_clips_of_a_long_file_are_faster_whispers(long_file):
    assert speech_spans(long_file, LONG_FORM_VAD, 30.0) == _faster_whisper_spans(long_file, LONG_FORM_VAD, 30.0)


PLANS = [
    (LONG_FORM_VAD, 30.0),
    (OPENAI_SERVER_VAD, float("inf")),
    (OPENAI_SERVER_VAD, 3.0),
    (DIARIZATION_VAD, float("inf")),
    (VadSettings(threshold=0.3, prefix_padding_ms=0, silence_duration_ms=100, min_speech_ms=200), 1.0),
]


def test_the_cutter_cuts_every_recording_as_faster_whisper_does(monkeypatch, corpus_audio, concatenation):
    """The same probabilities (the test above) cut the same way: faster-whisper's cutter, fed the probabilities
    read here, against ``cut_speech``, for every recording of the corpus and their concatenation, under each
    preset and a few extremes (short stretches split, short ones dropped, no padding)."""
    import faster_whisper.vad as faster_whisper_vad

    recordings = [*corpus_audio, concatenation]
    # As faster-whisper pads: to whole windows, with a whole window of zeros when the audio is already whole.
    read = [window_probabilities(np.pad(a, (0, WINDOW_SAMPLES - a.size % WINDOW_SAMPLES))) for a in recordings]
    for audio, probabilities in zip(recordings, read):
        monkeypatch.setattr(faster_whisper_vad, "get_vad_model", lambda p=probabilities: (lambda padded: p))
        for settings, max_speech_s in PLANS:
            options = _faster_whisper_options(settings, max_speech_s)
            expected = faster_whisper_vad.get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)
            spans = cut_speech(probabilities, audio.size, settings, max_speech_s)
            assert spans == [(s["start"], s["end"]) for s in expected], (audio.size, settings, max_speech_s)


def test_voice_detection_holds_one_block_beside_the_audio_never_a_copy_of_it(long_file):
    """numpy reports its buffers to tracemalloc: the peak during detection over 6.5 minutes (25 MB of samples) is
    a block's worth (5 MB), where reading the file at once padded it (a copy) and gave each window its context
    (another)."""
    tracemalloc.start()
    try:
        speech_spans(long_file, LONG_FORM_VAD, 30.0)
        window_probabilities(long_file)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert long_file.nbytes > 24 * 2**20
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MiB"


def test_the_callers_audio_is_left_as_it_was(utterance):
    audio = utterance[: 4 * WINDOW_SAMPLES].copy()
    window_probabilities(audio)
    speech_spans(audio, OPENAI_SERVER_VAD)
    np.testing.assert_array_equal(audio, utterance[: 4 * WINDOW_SAMPLES])
