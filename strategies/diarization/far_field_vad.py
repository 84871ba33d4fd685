"""Speech detection for diarization, tuned for far-field (meeting-room) audio.

The ASR clip splitter (``core.vad.speech_spans``) wants clean cut points and drops uncertain
speech; a diarizer wants every second somebody speaks, pauses inside a turn included (that is how
meeting references such as AMI are annotated). So this detector:

- normalises the level first (a quiet far-field recording is brought up to a fixed peak level),
- reads Silero's frame probabilities (the model faster-whisper ships) with hysteresis: speech
  starts above ``onset`` and ends only below the lower ``offset``,
- pads each region, joins regions separated by less than ``fill_gap_s`` (pauses inside a turn)
  and drops regions shorter than ``min_region_s``.

Long audio is read in blocks of ``block_s`` seconds so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.audio import SAMPLE_RATE
from core.vad import WINDOW_SAMPLES as VAD_FRAME
from core.vad import window_probabilities

VAD_FRAME_S = VAD_FRAME / SAMPLE_RATE

Span = tuple[float, float]


@dataclass(frozen=True)
class FarFieldVadSettings:
    """Defaults tuned on the corpus's multi-speaker recordings (frame-level missed + false alarm)."""

    onset: float = 0.25
    offset: float = 0.10
    pad_s: float = 0.05
    fill_gap_s: float = 1.0
    min_region_s: float = 0.25
    embedding_fill_gap_s: float = 0.2
    """Regions speaker embeddings are taken from join only shorter pauses, so that a window rarely
    spans two speakers; the gaps filled for the output regions take their speaker from the neighbours."""
    target_peak: float = 0.5
    """Level normalisation: the loud end of the recording (99.9th percentile of |x|) is brought here."""
    max_gain_db: float = 30.0
    block_s: float = 600.0


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


def speech_probabilities(audio: np.ndarray, settings: FarFieldVadSettings | None = None) -> np.ndarray:
    """Silero's speech probability for every 32 ms frame of 16 kHz mono ``audio`` (level-normalised first)."""
    settings = settings or FarFieldVadSettings()
    if audio.size == 0:
        return np.zeros(0, dtype=np.float32)
    step = max(VAD_FRAME, int(settings.block_s * SAMPLE_RATE) // VAD_FRAME * VAD_FRAME)
    out = []
    for start in range(0, audio.size, step):
        block = normalise_level(audio[start : start + step], settings.target_peak, settings.max_gain_db)
        out.append(window_probabilities(block))
    return np.concatenate(out)


def regions_from_probabilities(probabilities: np.ndarray, settings: FarFieldVadSettings | None = None) -> list[Span]:
    """Speech regions in seconds: hysteresis, padding, gap filling, short regions dropped."""
    settings = settings or FarFieldVadSettings()
    raw: list[list[int]] = []
    active = False
    start = 0
    for i, p in enumerate(probabilities.tolist()):
        if not active and p >= settings.onset:
            active, start = True, i
        elif active and p < settings.offset:
            active = False
            raw.append([start, i])
    if active:
        raw.append([start, len(probabilities)])
    total_s = len(probabilities) * VAD_FRAME_S
    merged: list[list[float]] = []
    for a, b in raw:
        s, e = max(0.0, a * VAD_FRAME_S - settings.pad_s), min(total_s, b * VAD_FRAME_S + settings.pad_s)
        if merged and s - merged[-1][1] <= settings.fill_gap_s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(round(s, 3), round(e, 3)) for s, e in merged if e - s >= settings.min_region_s]


def far_field_speech_regions(
    audio: np.ndarray, settings: FarFieldVadSettings | None = None
) -> tuple[list[Span], list[Span]]:
    """(speech regions, the tighter regions to take embeddings from), in seconds, clipped to the audio."""
    settings = settings or FarFieldVadSettings()
    duration = audio.size / SAMPLE_RATE
    probabilities = speech_probabilities(audio, settings)
    tight = replace(settings, fill_gap_s=settings.embedding_fill_gap_s)
    out = []
    for regions in (regions_from_probabilities(probabilities, settings), regions_from_probabilities(probabilities, tight)):
        out.append([(s, min(e, duration)) for s, e in regions if min(e, duration) - s >= settings.min_region_s])
    return out[0], out[1]
