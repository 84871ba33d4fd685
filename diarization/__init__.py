"""Speaker diarization: who spoke when, and which transcript words each speaker said."""

from .assign import AttributedSegment, AttributedWord, assign_speakers, speaker_turns_with_text
from .base import Diarizer, SpeakerTurn
from .factory import create_diarizer

__all__ = [
    "AttributedSegment",
    "AttributedWord",
    "Diarizer",
    "SpeakerTurn",
    "assign_speakers",
    "create_diarizer",
    "speaker_turns_with_text",
]
