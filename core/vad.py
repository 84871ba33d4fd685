"""Voice activity detection for every caller: one settings type with its named presets, speech probabilities and
cuts from the Silero model that faster-whisper ships (ONNX, offline).

The model reads a file block by block and the cuts are made from its probabilities (one float per 32 ms), so
detection over hours of audio holds the audio once and one block; the probabilities and the cuts are exactly
faster-whisper's, which reads the whole file at once (a padded copy, and another with each window's context)."""

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


BLOCK_WINDOWS = 2048
"""Windows Silero reads per call (65 s of audio): a file is fed to it block by block, so that voice detection
holds the audio once plus one block (about 5 MB), never a copy of the whole file."""
_CONTEXT_SAMPLES = 64
"""Silero v6 reads each window with the last samples of the one before it."""
_STATE_SHAPE = (1, 1, 128)


def window_probabilities(audio: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each 512-sample window of 16 kHz mono ``audio`` (a last partial window is
    zero-padded); the model carries its state from one window to the next within the call."""
    return _probabilities(audio, -(-audio.size // WINDOW_SAMPLES))


def _probabilities(audio: np.ndarray, windows: int) -> np.ndarray:
    """Silero over the first ``windows`` windows of ``audio`` (zeros past its end), block by block.

    The probabilities are exactly those of faster-whisper's ``SileroVADModel`` over the zero-padded audio at once:
    its recurrent state and each window's 64 samples of context carry from block to block, and the last window's
    final 64 samples are zero, as that model leaves them (it writes its context into its input)."""
    from faster_whisper.vad import get_vad_model

    session = get_vad_model().session
    probabilities = np.empty(windows, dtype=np.float32)
    h = np.zeros(_STATE_SHAPE, dtype=np.float32)
    c = np.zeros(_STATE_SHAPE, dtype=np.float32)
    context = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)
    block = np.empty((min(BLOCK_WINDOWS, windows), _CONTEXT_SAMPLES + WINDOW_SAMPLES), dtype=np.float32)
    for first in range(0, windows, BLOCK_WINDOWS):
        count = min(BLOCK_WINDOWS, windows - first)
        rows = block[:count]
        samples = audio[first * WINDOW_SAMPLES : (first + count) * WINDOW_SAMPLES]
        whole = samples.size // WINDOW_SAMPLES
        rows[:whole, _CONTEXT_SAMPLES:] = samples[: whole * WINDOW_SAMPLES].reshape(whole, WINDOW_SAMPLES)
        rows[whole:] = 0.0
        if rest := samples.size - whole * WINDOW_SAMPLES:
            rows[whole, _CONTEXT_SAMPLES : _CONTEXT_SAMPLES + rest] = samples[whole * WINDOW_SAMPLES :]
        rows[0, :_CONTEXT_SAMPLES] = context
        rows[1:, :_CONTEXT_SAMPLES] = rows[:-1, -_CONTEXT_SAMPLES:]
        context = rows[-1, -_CONTEXT_SAMPLES:].copy()
        if first + count == windows:
            rows[-1, -_CONTEXT_SAMPLES:] = 0.0
        output, h, c = session.run(None, {"input": rows, "h": h, "c": c})
        probabilities[first : first + count] = np.asarray(output, dtype=np.float32).reshape(-1)
    return probabilities


def speech_spans(
    audio: np.ndarray, settings: VadSettings, max_speech_s: float = float("inf")
) -> list[tuple[int, int]]:
    """``[start, end)`` sample ranges of speech in 16 kHz mono audio, none longer than ``max_speech_s``: Silero's
    own cutter, exactly as faster-whisper's ``get_speech_timestamps`` cuts, over probabilities read block by block.
    """
    # faster-whisper pads the audio to whole windows, with a whole window of zeros when it is already whole.
    probabilities = _probabilities(audio, audio.size // WINDOW_SAMPLES + 1)
    return cut_speech(probabilities, audio.size, settings, max_speech_s)


def cut_speech(
    probabilities: np.ndarray, audio_samples: int, settings: VadSettings, max_speech_s: float = float("inf")
) -> list[tuple[int, int]]:
    """Speech cut from window probabilities as faster-whisper's ``get_speech_timestamps`` cuts it (its loop, with
    its arithmetic, so that the clips of every file are the same): speech starts at ``threshold``, ends after
    ``silence_duration_ms`` below the pause threshold, stretches longer than ``max_speech_s`` are split at their
    last pause of 98 ms or more, short ones dropped, the rest padded by ``prefix_padding_ms``."""
    window = WINDOW_SAMPLES
    pad = SAMPLE_RATE * settings.prefix_padding_ms / 1000
    max_speech = SAMPLE_RATE * max_speech_s - window - 2 * pad
    min_speech = SAMPLE_RATE * settings.min_speech_ms / 1000
    min_silence = SAMPLE_RATE * settings.silence_duration_ms / 1000
    min_silence_at_max_speech = SAMPLE_RATE * 98 / 1000
    pause = settings.silence_threshold
    if pause is None:
        pause = max(settings.threshold - HYSTERESIS, 0.01)
    # faster-whisper compares float32 probabilities with these, in float32.
    threshold, pause = float(np.float32(settings.threshold)), float(np.float32(pause))

    speeches: list[list[int]] = []
    triggered = False
    start = None
    temp_end = prev_end = next_start = 0
    for i, probability in enumerate(probabilities.tolist()):
        position = window * i
        if probability >= threshold and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = position
        if probability >= threshold and not triggered:
            triggered, start = True, position
            continue
        if triggered and position - start > max_speech:
            if prev_end:
                speeches.append([start, prev_end])
                start = None
                if next_start < prev_end:  # silence since the last pause, and still no speech
                    triggered = False
                else:
                    start = next_start
                prev_end = next_start = temp_end = 0
            else:
                speeches.append([start, position])
                start = None
                prev_end = next_start = temp_end = 0
                triggered = False
                continue
        if probability < pause and triggered:
            if not temp_end:
                temp_end = position
            if position - temp_end > min_silence_at_max_speech:
                prev_end = temp_end
            if position - temp_end < min_silence:
                continue
            if temp_end - start > min_speech:
                speeches.append([start, temp_end])
            start = None
            prev_end = next_start = temp_end = 0
            triggered = False
    if start is not None and audio_samples - start > min_speech:
        speeches.append([start, audio_samples])
    return _padded(speeches, pad, audio_samples)


def _padded(speeches: list[list[int]], pad: float, audio_samples: int) -> list[tuple[int, int]]:
    """Each stretch padded by ``pad`` samples on both sides; two closer than twice that share the gap."""
    for i, speech in enumerate(speeches):
        if i == 0:
            speech[0] = int(max(0, speech[0] - pad))
        if i != len(speeches) - 1:
            gap = speeches[i + 1][0] - speech[1]
            if gap < 2 * pad:
                speech[1] += int(gap // 2)
                speeches[i + 1][0] = int(max(0, speeches[i + 1][0] - gap // 2))
            else:
                speech[1] = int(min(audio_samples, speech[1] + pad))
                speeches[i + 1][0] = int(max(0, speeches[i + 1][0] - pad))
        else:
            speech[1] = int(min(audio_samples, speech[1] + pad))
    return [(start, end) for start, end in speeches]


def load_vad_model() -> None:
    """Load the model now (faster-whisper caches it), so that the first request does not wait for it."""
    from faster_whisper.vad import get_vad_model

    get_vad_model()
