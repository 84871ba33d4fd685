"""``core/vad.py``: Silero's speech probabilities and cuts, the settings type, its presets and its bounds."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.audio import SAMPLE_RATE, decode_audio
from core.vad import (
    DIARIZATION_VAD,
    HYSTERESIS,
    LONG_FORM_VAD,
    MAX_DURATION_MS,
    OPENAI_SERVER_VAD,
    WINDOW_SAMPLES,
    VadSettings,
    speech_spans,
    window_probabilities,
)

PRESETS = [LONG_FORM_VAD, OPENAI_SERVER_VAD, DIARIZATION_VAD]
SILENCE = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)


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
