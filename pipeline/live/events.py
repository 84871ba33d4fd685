"""What a live transcription session tells its client, in domain terms (the server renders them as
OpenAI Realtime events). Times are milliseconds of audio since the session started."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import STTError
from core.types import TokenLogprob


@dataclass(frozen=True)
class SpeechStarted:
    item_id: str
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True)
class Committed:
    item_id: str
    previous_item_id: str | None


@dataclass(frozen=True)
class Cleared:
    pass


@dataclass(frozen=True)
class TranscriptDelta:
    item_id: str
    delta: str
    logprobs: list[TokenLogprob] | None = None
    """The delta's tokens, when the session asked for log-probabilities."""


@dataclass(frozen=True)
class TranscriptCompleted:
    item_id: str
    transcript: str
    audio_seconds: float
    language: str | None
    logprobs: list[TokenLogprob] | None = None


@dataclass(frozen=True)
class TranscriptFailed:
    item_id: str
    error: STTError


LiveEvent = SpeechStarted | SpeechStopped | Committed | Cleared | TranscriptDelta | TranscriptCompleted | TranscriptFailed
