"""What a transcription request asks for and what an engine gives back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

Task = Literal["transcribe", "translate"]


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None
    task: Task = "transcribe"
    word_timestamps: bool = False
    initial_prompt: str | None = None
    temperature: float | None = None
    """None: the engine's default temperature fallback."""


class Word(BaseModel):
    start: float
    end: float
    word: str
    probability: float | None = None
    speaker: str | None = None


class Segment(BaseModel):
    id: int
    seek: int = 0
    start: float
    end: float
    text: str
    tokens: list[int] = Field(default_factory=list)
    temperature: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    words: list[Word] = Field(default_factory=list)
    speaker: str | None = None


class Transcription(BaseModel):
    """An engine's result for one audio input."""

    text: str
    language: str | None
    duration: float = Field(description="Seconds of audio")
    segments: list[Segment]


class TranscriptionResponse(Transcription):
    """The ``/transcribe`` response body."""

    model_id: str
    processing_time_s: float
