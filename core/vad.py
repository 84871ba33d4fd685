"""Voice activity detection with the Silero model that faster-whisper ships (ONNX, offline)."""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE

WINDOW_SAMPLES = 512
"""Samples per Silero window at 16 kHz (32 ms): one speech probability each."""


def window_probabilities(audio: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each 512-sample window of 16 kHz mono ``audio`` (a last partial window is
    zero-padded); the model carries its state from one window to the next within the call."""
    from faster_whisper.vad import get_vad_model

    if audio.size % WINDOW_SAMPLES:
        audio = np.pad(audio, (0, WINDOW_SAMPLES - audio.size % WINDOW_SAMPLES))
    return np.asarray(get_vad_model()(audio), dtype=np.float32).reshape(-1)


def speech_spans(
    audio: np.ndarray,
    *,
    threshold: float = 0.5,
    min_silence_ms: int = 2000,
    speech_pad_ms: int = 400,
    max_speech_s: float = float("inf"),
) -> list[tuple[int, int]]:
    """``[start, end)`` sample ranges of speech in 16 kHz mono audio, none longer than ``max_speech_s``."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        threshold=threshold,
        min_silence_duration_ms=min_silence_ms,
        speech_pad_ms=speech_pad_ms,
        max_speech_duration_s=max_speech_s,
    )
    return [(span["start"], span["end"]) for span in get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)]


def load_vad_model() -> None:
    """Load the model now (faster-whisper caches it), so that the first request does not wait for it."""
    from faster_whisper.vad import get_vad_model

    get_vad_model()
