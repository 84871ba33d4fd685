"""Live transcription: audio arrives in pieces, turns are found in it, each turn is transcribed as it grows and
when it ends."""

from __future__ import annotations

from .events import (
    Cleared,
    Committed,
    LiveEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
)
from .session import LiveSession
from .transcriber import LiveConfig, LiveLimits, LiveTranscriber

__all__ = [
    "Cleared",
    "Committed",
    "LiveConfig",
    "LiveEvent",
    "LiveLimits",
    "LiveSession",
    "LiveTranscriber",
    "SpeechStarted",
    "SpeechStopped",
    "TranscriptCompleted",
    "TranscriptDelta",
    "TranscriptFailed",
]
