"""Speech detection for diarization, tuned for far-field (meeting-room) audio, with ``core.vad.DIARIZATION_VAD``.

The ASR clip splitter (``core.vad.speech_spans``) wants clean cut points and drops uncertain
speech; a diarizer wants every second somebody speaks, pauses inside a turn included (that is how
meeting references such as AMI are annotated). So this detector:

- normalises the level first (a quiet far-field recording is brought up to a fixed peak level),
- reads Silero's frame probabilities (the model faster-whisper ships) with hysteresis: speech
  starts at ``threshold`` and ends only below the lower ``silence_threshold``,
- pads each region by ``prefix_padding_ms``, joins regions separated by at most ``silence_duration_ms``
  (pauses inside a turn) and drops regions shorter than ``min_speech_ms``.

Long audio is read in blocks of ``BLOCK_S`` seconds so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.audio import SAMPLE_RATE
from core.vad import DIARIZATION_VAD, VadSettings, window_probabilities
from core.vad import WINDOW_SAMPLES as VAD_FRAME

from .frames import Span

VAD_FRAME_S = VAD_FRAME / SAMPLE_RATE

EMBEDDING_SILENCE_MS = 200
"""Regions speaker embeddings are taken from join only shorter pauses, so that a window rarely spans two
speakers; the gaps filled for the output regions take their speaker from the neighbours."""
TARGET_PEAK = 0.5
"""Level normalisation: the loud end of the recording (99.9th percentile of |x|) is brought here."""
MAX_GAIN_DB = 30.0
BLOCK_S = 600.0


def normalise_level(audio: np.ndarray, target_peak: float, max_gain_db: float) -> np.ndarray:
    """``audio`` scaled so its 99.9th-percentile magnitude is ``target_peak`` (gain at most ``max_gain_db``)."""
    if audio.size == 0:
        return audio
    step = max(1, audio.size // 1_000_000)  # a subsample is enough for a percentile
    level = float(np.percentile(np.abs(audio[::step]), 99.9))
    if level <= 1e-6:
        return audio
    gain = min(target_peak / level, 10 ** (max_gain_db / 20))
    return np.clip(audio * np.float32(gain), -1.0, 1.0).astype(np.float32, copy=False)


def speech_probabilities(audio: np.ndarray) -> np.ndarray:
    """Silero's speech probability for every 32 ms frame of 16 kHz mono ``audio`` (level-normalised first)."""
    if audio.size == 0:
        return np.zeros(0, dtype=np.float32)
    step = max(VAD_FRAME, int(BLOCK_S * SAMPLE_RATE) // VAD_FRAME * VAD_FRAME)
    out = []
    for start in range(0, audio.size, step):
        block = normalise_level(audio[start : start + step], TARGET_PEAK, MAX_GAIN_DB)
        out.append(window_probabilities(block))
    return np.concatenate(out)


def regions_from_probabilities(probabilities: np.ndarray, settings: VadSettings = DIARIZATION_VAD) -> list[Span]:
    """Speech regions in seconds: hysteresis, padding, gap filling, short regions dropped."""
    pad_s = settings.prefix_padding_ms / 1000
    fill_gap_s = settings.silence_duration_ms / 1000
    min_region_s = settings.min_speech_ms / 1000
    raw: list[list[int]] = []
    active = False
    start = 0
    for i, p in enumerate(probabilities.tolist()):
        if not active and p >= settings.threshold:
            active, start = True, i
        elif active and p < settings.pause_threshold:
            active = False
            raw.append([start, i])
    if active:
        raw.append([start, len(probabilities)])
    total_s = len(probabilities) * VAD_FRAME_S
    merged: list[list[float]] = []
    for a, b in raw:
        s, e = max(0.0, a * VAD_FRAME_S - pad_s), min(total_s, b * VAD_FRAME_S + pad_s)
        if merged and s - merged[-1][1] <= fill_gap_s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(round(s, 3), round(e, 3)) for s, e in merged if e - s >= min_region_s]


def far_field_speech_regions(
    audio: np.ndarray, settings: VadSettings = DIARIZATION_VAD
) -> tuple[list[Span], list[Span]]:
    """(speech regions, the tighter regions to take embeddings from), in seconds, clipped to the audio."""
    duration = audio.size / SAMPLE_RATE
    min_region_s = settings.min_speech_ms / 1000
    probabilities = speech_probabilities(audio)
    tight = replace(settings, silence_duration_ms=EMBEDDING_SILENCE_MS)
    out = []
    for vad in (settings, tight):
        regions = regions_from_probabilities(probabilities, vad)
        out.append([(s, min(e, duration)) for s, e in regions if min(e, duration) - s >= min_region_s])
    return out[0], out[1]
