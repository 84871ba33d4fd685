"""Audio for tests: tones and silence as float32 samples, and the corpus's JFK clip."""

from __future__ import annotations

import numpy as np

from core.audio import SAMPLE_RATE

JFK_FILE = "en/jfk_inaugural_1961_excerpt.flac"
JFK_PHRASE = "ask not what your country can do for you"


def tone(seconds: float, hz: float = 220.0, rate: int = SAMPLE_RATE, amplitude: float = 0.3) -> np.ndarray:
    """A sine of ``hz`` lasting ``seconds`` at ``rate`` samples a second."""
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def silence(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def said_three_times(jfk_audio: np.ndarray, pause_s: float = 0.7) -> np.ndarray:
    """The JFK clip's sentence said three times with natural pauses: 34.4 s of speech that truly repeats, so that
    its first 30 s window compresses over Whisper's 2.4 and falls back."""
    pause = silence(pause_s)
    return np.concatenate([jfk_audio, pause, jfk_audio, pause, jfk_audio])
