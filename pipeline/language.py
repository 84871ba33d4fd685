"""The language policy: which language a request's audio is decoded in, and what a model can do with it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.errors import InvalidInputError
from core.languages import normalize_language
from core.registry import ModelSpec
from core.types import TranscribeOptions
from strategies.base import ASRStrategy


def requested_language(options: TranscribeOptions, spec: ModelSpec) -> TranscribeOptions:
    """The request's language as an ISO-639-1 code, or the registry entry's default when it names none."""
    return replace(options, language=normalize_language(options.language) or spec.language)


def fit_to_model(options: TranscribeOptions, multilingual: bool, spec: ModelSpec) -> TranscribeOptions:
    """English-only checkpoints: English in, English out; translating is transcribing."""
    if multilingual:
        return options
    if options.language not in (None, "en"):
        raise InvalidInputError(
            f"The model {spec.id!r} is English-only and cannot transcribe language {options.language!r}.",
            input="language",
        )
    return replace(options, language="en", task="transcribe")


def pin_language(engine: ASRStrategy, audio: np.ndarray, options: TranscribeOptions) -> TranscribeOptions:
    """One language for the whole file, detected from its first 30 s as Whisper does, so that all its
    clips agree."""
    if options.language is None and engine.is_multilingual:
        detected = engine.detect_language(audio)
        if detected:
            return replace(options, language=detected)
    return options
