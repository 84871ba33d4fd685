"""Voice activity detection for every caller: one settings type with its named presets, speech probabilities and
cuts from the Silero model that faster-whisper ships (ONNX, offline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE

WINDOW_SAMPLES = 512
"""Samples per Silero window at 16 kHz (32 ms): one speech probability each."""

HYSTERESIS = 0.15
"""Silero's own: once speech has started, it ends below ``threshold - HYSTERESIS`` unless told otherwise."""

MIN_THRESHOLD, MAX_THRESHOLD = 0.0, 1.0
"""``threshold`` is a probability: the bound of both routes' ``server_vad``."""
MIN_DURATION_MS, MAX_DURATION_MS = 0, 10_000
"""The bounds of ``prefix_padding_ms`` and ``silence_duration_ms`` on both routes (a file's ``chunking_strategy``
and a realtime session's ``turn_detection``): ten seconds of padding or of pause is already more than any cutting
needs, and an unbounded padding makes every clip the whole file."""


@dataclass(frozen=True)
class VadSettings:
    """Where speech starts and stops, and how audio is cut around it. The first three fields are OpenAI's
    ``server_vad`` (a request's ``chunking_strategy`` or a realtime session's ``turn_detection``), and their
    defaults are OpenAI's; the presets below name the other sets."""

    threshold: float = 0.5
    """Silero speech probability from which a window is speech, 0 to 1."""
    prefix_padding_ms: int = 300
    """Audio kept before (and after) each stretch of speech."""
    silence_duration_ms: int = 500
    """A pause at least this long ends a stretch of speech."""
    silence_threshold: float | None = None
    """Once speech has started, only a window below this probability counts as a pause; None: ``threshold -
    HYSTERESIS`` (Silero's cutter also keeps it at 0.01 or more)."""
    min_speech_ms: int = 0
    """Shorter stretches of speech are dropped."""

    def __post_init__(self) -> None:
        if not MIN_THRESHOLD <= self.threshold <= MAX_THRESHOLD:
            raise ValueError(f"threshold must be between {MIN_THRESHOLD:g} and {MAX_THRESHOLD:g}.")
        for name in ("prefix_padding_ms", "silence_duration_ms", "min_speech_ms"):
            if getattr(self, name) < MIN_DURATION_MS:
                raise ValueError(f"{name} must not be negative.")
        for name in ("prefix_padding_ms", "silence_duration_ms"):
            if getattr(self, name) > MAX_DURATION_MS:
                raise ValueError(f"{name} must be at most {MAX_DURATION_MS}.")
        if self.silence_threshold is not None and not MIN_THRESHOLD <= self.silence_threshold <= MAX_THRESHOLD:
            raise ValueError(f"silence_threshold must be between {MIN_THRESHOLD:g} and {MAX_THRESHOLD:g}.")

    @property
    def pause_threshold(self) -> float:
        """The probability below which a window counts as a pause once speech has started: ``silence_threshold``,
        or ``threshold - HYSTERESIS`` without one."""
        return self.threshold - HYSTERESIS if self.silence_threshold is None else self.silence_threshold

    @property
    def prefix_samples(self) -> int:
        return self.prefix_padding_ms * SAMPLE_RATE // 1000

    @property
    def silence_samples(self) -> int:
        return self.silence_duration_ms * SAMPLE_RATE // 1000


OPENAI_SERVER_VAD = VadSettings()
"""OpenAI's server VAD: a request's ``server_vad`` and a realtime session's turns, for the fields they leave out."""
LONG_FORM_VAD = VadSettings(prefix_padding_ms=200, silence_duration_ms=160)
"""The server's own cutting of audio over 30 s into Whisper clips: short pauses end a stretch of speech (the clip
planner joins stretches into clips), each padded a little."""
DIARIZATION_VAD = VadSettings(
    threshold=0.25, silence_threshold=0.10, prefix_padding_ms=50, silence_duration_ms=1000, min_speech_ms=250
)
"""Far-field (meeting-room) speech for a diarizer, which wants every second somebody speaks, pauses inside a turn
included: a low onset with a lower offset, pauses of up to a second filled. Tuned on the corpus's multi-speaker
recordings (frame-level missed speech + false alarm)."""


def window_probabilities(audio: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each 512-sample window of 16 kHz mono ``audio`` (a last partial window is
    zero-padded); the model carries its state from one window to the next within the call."""
    from faster_whisper.vad import get_vad_model

    if audio.size % WINDOW_SAMPLES:
        audio = np.pad(audio, (0, WINDOW_SAMPLES - audio.size % WINDOW_SAMPLES))
    return np.asarray(get_vad_model()(audio), dtype=np.float32).reshape(-1)


def speech_spans(
    audio: np.ndarray, settings: VadSettings, max_speech_s: float = float("inf")
) -> list[tuple[int, int]]:
    """``[start, end)`` sample ranges of speech in 16 kHz mono audio, none longer than ``max_speech_s`` (Silero's
    own cutter, as faster-whisper runs it)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        threshold=settings.threshold,
        neg_threshold=settings.silence_threshold,
        min_speech_duration_ms=settings.min_speech_ms,
        max_speech_duration_s=max_speech_s,
        min_silence_duration_ms=settings.silence_duration_ms,
        speech_pad_ms=settings.prefix_padding_ms,
    )
    return [(span["start"], span["end"]) for span in get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)]


def load_vad_model() -> None:
    """Load the model now (faster-whisper caches it), so that the first request does not wait for it."""
    from faster_whisper.vad import get_vad_model

    get_vad_model()
