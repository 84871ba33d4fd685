"""What a request asks for and what an engine gives back: one set of types for every route and engine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from .audio import SAMPLE_RATE
from .errors import InvalidInputError
from .text import check_characters
from .vad import VadSettings

Task = Literal["transcribe", "translate"]


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None
    task: Task = "transcribe"
    word_timestamps: bool = False
    initial_prompt: str | None = None
    temperature: float | None = None
    """None: the engine's default temperature fallback."""
    vad: VadSettings | None = None
    """A request's own ``server_vad``; None: the server's own long-form cutting (``LONG_FORM_VAD``: only audio over
    30 s is cut, pauses over 2 s end a clip)."""
    keywords: tuple[str, ...] = ()
    """Words and names the speaker is likely to say; decoding is biased towards them."""
    logprobs: bool = False
    """Return the log-probability of every text token (``Segment.logprobs``)."""
    seed: int | None = None
    """What seeds the sampling of the temperature fallback; None: each clip's own seed, from its audio and the
    options that change its text (strategies.whisper.seeding)."""


@dataclass(frozen=True, eq=False)
class KnownSpeaker:
    """A speaker to name by voice (OpenAI's ``known_speaker_names[]`` and ``known_speaker_references[]``): a short
    name on one line (no control or bidirectional-override characters: it is shown in every response and log) and 2
    to 10 seconds of the speaker's voice, 16 kHz mono float32."""

    name: str
    audio: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        check_speaker_name(self.name)
        seconds = self.audio.size / SAMPLE_RATE
        if not MIN_REFERENCE_S - _ROUNDING_S <= seconds <= MAX_REFERENCE_S + _ROUNDING_S:
            raise InvalidInputError(
                f"The reference for {self.name!r} holds {seconds:.2f} s of audio: each of known_speaker_references[] "
                f"must be {MIN_REFERENCE_S:g} to {MAX_REFERENCE_S:g} seconds.",
                input="known_speaker_references",
            )


def check_speaker_name(name: str) -> None:
    """A known speaker's name: 1 to ``MAX_SPEAKER_NAME_CHARACTERS`` characters on one line, no control or
    bidirectional-override character, not a generated label; InvalidInputError naming ``known_speaker_names``."""
    if not name.strip() or len(name) > MAX_SPEAKER_NAME_CHARACTERS:
        raise InvalidInputError(
            f"Each of known_speaker_names[] must be 1 to {MAX_SPEAKER_NAME_CHARACTERS} characters.",
            input="known_speaker_names",
        )
    check_characters(name, "known_speaker_names", lines=False)
    if GENERATED_SPEAKER_LABEL.fullmatch(name):
        raise InvalidInputError(
            f"{name!r} cannot name a known speaker: it is how unknown speakers are labelled.",
            input="known_speaker_names",
        )


MAX_KNOWN_SPEAKERS = 4
MAX_SPEAKER_NAME_CHARACTERS = 64
MIN_REFERENCE_S = 2.0
MAX_REFERENCE_S = 10.0
_ROUNDING_S = 0.01
"""Resampling may add or drop a few samples to a clip of exactly 2 or 10 seconds."""
GENERATED_SPEAKER_LABEL = re.compile(r"SPEAKER_\d+")
"""The labels diarization gives speakers (``SPEAKER_00``, ...): no known speaker may take one."""


@dataclass(frozen=True)
class DiarizeOptions:
    """Speaker counts a request may give to guide diarization, and speakers to name by voice."""

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    known_speakers: tuple[KnownSpeaker, ...] = ()
    """Speakers whose voices are recognised and named; the others keep generated labels."""

    def __post_init__(self) -> None:
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MAX_SPEAKERS:
                raise InvalidInputError(f"{name} must be between 1 and {MAX_SPEAKERS}.", input=name)
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise InvalidInputError("min_speakers is greater than max_speakers.", input="min_speakers")
        names = [speaker.name for speaker in self.known_speakers]
        if len(names) > MAX_KNOWN_SPEAKERS:
            raise InvalidInputError(
                f"At most {MAX_KNOWN_SPEAKERS} known speakers can be given, not {len(names)}.", input="known_speaker_names"
            )
        if len(set(names)) < len(names):
            raise InvalidInputError("known_speaker_names[] must all differ.", input="known_speaker_names")


MAX_SPEAKERS = 32


@dataclass(frozen=True)
class SpeakerTurn:
    """One stretch of speech by one speaker, in seconds from the start of the audio."""

    speaker: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


class TokenLogprob(BaseModel):
    """A decoded text token and the model's log-probability of it (OpenAI's ``Logprob``)."""

    token: str
    bytes: list[int]
    """The token's UTF-8 bytes (a token may hold part of a character)."""
    logprob: float


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
    logprobs: list[TokenLogprob] | None = Field(default=None, exclude=True)
    """The segment's text tokens with their log-probabilities, when the request asked for them. Not part of any
    segment a response shows: the routes that return log-probabilities read it."""


class Transcription(BaseModel):
    """An engine's result for one audio input."""

    text: str
    language: str | None
    duration: float = Field(description="Seconds of audio")
    segments: list[Segment]
    language_probability: float | None = None
    """How sure the engine was of ``language`` when it detected it; 1.0 when the caller named the language."""


@dataclass(frozen=True)
class TranscriptionResult:
    """What the pipeline hands every route: the transcription, the model that made it and how long it took."""

    transcription: Transcription
    model_id: str
    processing_s: float
