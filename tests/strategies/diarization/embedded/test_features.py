"""The embedded diarizer's features are computed in pieces (bounded memory) with the same result."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.diarization.embedded.features import HOP, MEL_CHUNK_FRAMES, N_FFT, gain, mel_filterbank, mel_power


def _mel_in_one_piece(audio: np.ndarray, basis: np.ndarray) -> np.ndarray:
    padded = np.pad(audio, N_FFT // 2)
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    spectrum = np.fft.rfft(frames * window, axis=1)
    return ((spectrum.real**2 + spectrum.imag**2) @ basis.T).astype(np.float32)


@pytest.mark.parametrize("n_samples", [0, 100, N_FFT, MEL_CHUNK_FRAMES * HOP + 123])
def test_chunked_mel_matches_one_piece(n_samples):
    audio = (np.random.default_rng(0).standard_normal(n_samples) * 0.1).astype(np.float32)
    basis = mel_filterbank()
    np.testing.assert_allclose(mel_power(audio, basis), _mel_in_one_piece(audio, basis), rtol=1e-5, atol=1e-7)


def test_gain_brings_the_speech_regions_to_the_target_level():
    audio = np.zeros(16_000 * 130, dtype=np.float32)
    audio[16_000 : 16_000 * 125] = 0.01
    assert gain(audio, [(1.0, 125.0)], -20.0) == pytest.approx(10.0, rel=1e-4)
    assert gain(audio, [], -20.0) == 1.0
