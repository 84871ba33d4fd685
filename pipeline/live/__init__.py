"""Live transcription: audio arrives in pieces, turns are found in it, each turn is transcribed as it grows and
when it ends."""

from __future__ import annotations

from .session import LiveConfig, LiveLimits, LiveSession, LiveTranscriber

__all__ = ["LiveConfig", "LiveLimits", "LiveSession", "LiveTranscriber"]
