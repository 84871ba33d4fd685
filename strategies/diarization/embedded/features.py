"""The voice encoder's input: mel power spectrograms on the 10 ms grid, with speech brought to one loudness."""

from __future__ import annotations

import functools

import numpy as np

from ..base import SAMPLE_RATE
from .frames import Span

N_FFT = 400  # 25 ms
HOP = 160  # 10 ms: one frame of the diarizer's grid (frames.FRAME_S)
N_MELS = 40
MEL_CHUNK_FRAMES = 6000  # a minute of audio per STFT pass bounds memory on long recordings


def encoder_features(audio: np.ndarray, regions: list[Span], speech_dbfs: float | None) -> np.ndarray:
    """The encoder's mel power features, with the speech in ``regions`` brought to ``speech_dbfs`` (None: as is)."""
    mel = mel_power(audio, mel_filterbank())
    if speech_dbfs is not None:
        mel *= gain(audio, regions, speech_dbfs) ** 2
    return mel


def gain(audio: np.ndarray, regions: list[Span], target_dbfs: float) -> float:
    """The amplitude factor that brings the speech in ``regions`` to ``target_dbfs`` RMS."""
    energy, samples = 0.0, 0
    for start, end in regions:  # region by region, a minute at a time: no copy of the whole recording
        for a in range(int(start * SAMPLE_RATE), int(end * SAMPLE_RATE), 60 * SAMPLE_RATE):
            piece = audio[a : min(a + 60 * SAMPLE_RATE, int(end * SAMPLE_RATE))].astype(np.float64)
            energy += float(np.dot(piece, piece))
            samples += piece.size
    rms = float(np.sqrt(energy / samples)) if samples else 0.0
    return 10 ** (target_dbfs / 20) / rms if rms > 1e-6 else 1.0


@functools.cache
def mel_filterbank(n_fft: int = N_FFT, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the Slaney mel scale, each of unit area,
    the features resemblyzer's encoder was trained on."""
    hz_points = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    bins_hz = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    rising = (bins_hz - lower) / (centre - lower)
    falling = (upper - bins_hz) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return (weights * (2.0 / (upper - lower))).astype(np.float32)


_LINEAR_MEL_HZ = 200.0 / 3  # Slaney: linear below 1 kHz, logarithmic above
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _LINEAR_MEL_HZ
    log = 1000.0 / _LINEAR_MEL_HZ + np.log(np.maximum(hz, 1e-10) / 1000.0) / _LOG_STEP
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = mel * _LINEAR_MEL_HZ
    log = 1000.0 * np.exp(_LOG_STEP * (mel - 1000.0 / _LINEAR_MEL_HZ))
    return np.where(mel >= 1000.0 / _LINEAR_MEL_HZ, log, linear)


def mel_power(audio: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(frames, n_mels) mel power spectrogram (no log), one centred 25 ms frame every 10 ms."""
    half = N_FFT // 2
    n_frames = 1 + (len(audio) + 2 * half - N_FFT) // HOP
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
    mel = np.empty((n_frames, basis.shape[0]), dtype=np.float32)
    for i in range(0, n_frames, MEL_CHUNK_FRAMES):
        count = min(MEL_CHUNK_FRAMES, n_frames - i)
        # Samples of frames i..i+count, zero-padded at the recording's ends only (no padded copy of it all).
        first, last = i * HOP - half, (i + count - 1) * HOP - half + N_FFT
        piece = audio[max(first, 0) : min(last, len(audio))]
        piece = np.pad(piece, (max(0, -first), max(0, last - len(audio))))
        frames = np.lib.stride_tricks.sliding_window_view(piece, N_FFT)[::HOP][:count]
        spectrum = np.fft.rfft(frames * window, axis=1)
        mel[i : i + count] = (spectrum.real**2 + spectrum.imag**2) @ basis.T
    return mel
