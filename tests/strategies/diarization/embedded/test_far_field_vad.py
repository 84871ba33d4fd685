"""The far-field speech detector's post-processing and level normalisation (no model needed)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.vad import DIARIZATION_VAD, VadSettings
from strategies.diarization.embedded.far_field_vad import (
    VAD_FRAME_S,
    far_field_speech_regions,
    normalise_level,
    regions_from_probabilities,
)


def probs(*levels: tuple[float, float]) -> np.ndarray:
    """(probability, seconds) pieces as 32 ms frames."""
    return np.concatenate([np.full(int(round(s / VAD_FRAME_S)), p, dtype=np.float32) for p, s in levels])


def test_hysteresis_keeps_speech_until_the_lower_offset():
    settings = VadSettings(
        threshold=0.5, silence_threshold=0.1, prefix_padding_ms=0, silence_duration_ms=0, min_speech_ms=0
    )
    regions = regions_from_probabilities(probs((0.0, 1.0), (0.9, 1.0), (0.2, 1.0), (0.0, 1.0)), settings)
    assert len(regions) == 1
    assert regions[0][0] == pytest.approx(1.0, abs=0.04)
    assert regions[0][1] == pytest.approx(3.0, abs=0.04)  # 0.2 is above the offset: still speech


def test_short_pauses_are_filled_and_long_ones_kept():
    settings = replace(DIARIZATION_VAD, prefix_padding_ms=0, silence_duration_ms=1000, min_speech_ms=0)
    short = regions_from_probabilities(probs((0.9, 1.0), (0.0, 0.8), (0.9, 1.0)), settings)
    long = regions_from_probabilities(probs((0.9, 1.0), (0.0, 1.5), (0.9, 1.0)), settings)
    assert len(short) == 1
    assert len(long) == 2


def test_padding_and_minimum_length():
    settings = replace(DIARIZATION_VAD, prefix_padding_ms=100, silence_duration_ms=0, min_speech_ms=300)
    regions = regions_from_probabilities(probs((0.0, 1.0), (0.9, 0.5), (0.0, 1.0), (0.9, 0.064), (0.0, 1.0)), settings)
    assert len(regions) == 1  # the 64 ms blip plus padding is under 0.3 s
    start, end = regions[0]
    assert start == pytest.approx(0.9, abs=0.04)
    assert end == pytest.approx(1.6, abs=0.04)


def test_level_normalisation_brings_quiet_audio_up_to_the_target_within_the_gain_cap():
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(16_000) * 0.001).astype(np.float32)
    loud = normalise_level(quiet, target_peak=0.5, max_gain_db=60.0)
    assert np.percentile(np.abs(loud), 99.9) == pytest.approx(0.5, rel=0.05)
    capped = normalise_level(quiet, target_peak=0.5, max_gain_db=20.0)
    assert np.abs(capped).max() == pytest.approx(np.abs(quiet).max() * 10, rel=1e-3)
    assert normalise_level(np.zeros(100, dtype=np.float32), 0.5, 30.0).max() == 0.0


def test_silence_has_no_regions_and_embedding_regions_are_within_the_output_ones():
    assert far_field_speech_regions(np.zeros(16_000 * 2, dtype=np.float32)) == ([], [])
    assert far_field_speech_regions(np.zeros(0, dtype=np.float32)) == ([], [])
