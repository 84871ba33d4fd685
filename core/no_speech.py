"""Audio with nothing to transcribe, recognised before voice detection or a model runs: silence, and a long signal
whose level never moves (a DC offset, mains hum, a tone, stationary noise).

Both would cost what speech costs (hours of Silero windows, then clips the model decodes only to write nothing or,
worse, invent words) and hold nothing to transcribe. Speech, even under loud stationary noise, moves the level of
the bands it carries by many decibels from syllable to syllable; stationary signals keep every band within a few
decibels of its median, however long they last. ``is_stationary`` measures that, in four bands of 100 ms frames,
block by block (a few MB beside the audio, about 0.1 s of CPU per 20 minutes).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from .audio import SAMPLE_RATE

SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS

MIN_STATIONARY_S = 30.0
"""Shorter audio fits one clip (no voice detection, one decode), and goes to the model however steady it is."""
FRAME_SAMPLES = SAMPLE_RATE // 10
"""100 ms: a syllable spans a few frames."""
BANDS_HZ = (60, 500, 1500, 4000, SAMPLE_RATE // 2)
"""Band edges: below 60 Hz there is no speech (a DC offset, rumble); speech carries its voicing, its vowels and its
consonants in the other bands, where broadband noise is spread thin."""
FLOOR_DB = -90.0
"""Band power below this (relative to full scale) counts as this: inaudible, and steady."""
SUSTAINED_FRAMES = 3
"""A change counts only when it lasts this many frames (300 ms), as a word does; noise moves a frame at a time. So
a click or a knock in a steady background counts as steady, and so would a lone word shorter than 300 ms."""
MAX_RISE_DB = 3.0
MAX_FALL_DB = 6.0
"""How far a band's level may rise above, and fall below, its median for ``SUSTAINED_FRAMES`` in a stationary
signal. Measured over 4 hours (138,000 frames): white and pink noise rise 2.0 dB at most and fall 2.5 dB (the lower
tail of a noise's power is the longer one); DC, hum and tones move less than 0.2 dB. Speech rises further: each
recording of the corpus in a minute of white or pink noise as loud as itself (0 dB SNR) 3.7 dB or more (a 2 s
sentence without a pause in pink noise; most rise 5 to 20 dB), long recordings under white, pink or brown noise or
hum at 0 dB SNR 12 dB or more (``tests/core/test_no_speech.py`` holds the set)."""
_BLOCK_FRAMES = 256
"""Frames transformed at once: 26 s of audio, about 3 MB of spectra."""


def nothing_to_transcribe(audio: np.ndarray) -> bool:
    """Silence, or a stationary signal longer than a clip: the request's transcript is empty without running
    voice detection or a model."""
    return is_silent(audio) or (audio.size >= MIN_STATIONARY_S * SAMPLE_RATE and is_stationary(audio))


def is_silent(audio: np.ndarray) -> bool:
    """No samples, or nothing louder than -60 dBFS: Whisper would only hallucinate words here."""
    # The peak as max and -min: np.abs would copy the whole audio (hours of it) for one number.
    return audio.size == 0 or max(float(audio.max()), -float(audio.min())) < SILENCE_PEAK


def is_stationary(audio: np.ndarray) -> bool:
    """Whether no band's level rises more than ``MAX_RISE_DB`` above its median, or falls more than ``MAX_FALL_DB``
    below it, for ``SUSTAINED_FRAMES`` frames in a row."""
    levels = band_levels(audio)
    if levels.shape[1] < SUSTAINED_FRAMES:
        return False
    deviation = levels - np.median(levels, axis=1, keepdims=True)
    runs = sliding_window_view(deviation, SUSTAINED_FRAMES, axis=1)
    rise = float(runs.min(axis=2).max())  # the most every frame of a run stays above the median
    fall = float(runs.max(axis=2).min())
    return rise <= MAX_RISE_DB and fall >= -MAX_FALL_DB


def band_levels(audio: np.ndarray) -> np.ndarray:
    """The power of each band of ``BANDS_HZ`` in each whole 100 ms frame of 16 kHz ``audio``, in dB relative to full
    scale (a full-scale sine is -3 dB), at least ``FLOOR_DB``: shape (bands, frames)."""
    frames = audio.size // FRAME_SAMPLES
    window = np.hanning(FRAME_SAMPLES).astype(np.float32)
    frequencies = np.fft.rfftfreq(FRAME_SAMPLES, 1 / SAMPLE_RATE)
    first_bins = np.searchsorted(frequencies, BANDS_HZ[:-1])
    scale = 2 / (FRAME_SAMPLES * float(np.sum(window.astype(np.float64) ** 2)))  # one-sided power of a windowed frame
    floor = 10 ** (FLOOR_DB / 10)
    levels = np.empty((len(first_bins), frames), dtype=np.float32)
    for first in range(0, frames, _BLOCK_FRAMES):
        last = min(frames, first + _BLOCK_FRAMES)
        block = audio[first * FRAME_SAMPLES : last * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES) * window
        spectrum = scipy.fft.rfft(block, axis=1)[:, first_bins[0] :]  # single precision, as the audio
        power = np.square(spectrum.real) + np.square(spectrum.imag)
        bands = np.add.reduceat(power, first_bins - first_bins[0], axis=1) * scale
        levels[:, first:last] = (10 * np.log10(np.maximum(bands, floor))).T
    return levels
