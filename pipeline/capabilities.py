"""What a model can do with a request: the language its audio is decoded in (the language policy), and the
options its engine must be able to honour."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.errors import InvalidInputError
from core.languages import normalize_language
from core.registry import ModelSpec
from core.types import TranscribeOptions
from strategies.base import ASREngine


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


def pin_language(engine: ASREngine, audio: np.ndarray, options: TranscribeOptions) -> TranscribeOptions:
    """One language for the whole file, detected from its first 30 s as Whisper does, so that all its
    clips agree."""
    return pin_language_probability(engine, audio, options)[0]


def pin_language_probability(
    engine: ASREngine, audio: np.ndarray, options: TranscribeOptions
) -> tuple[TranscribeOptions, float | None]:
    """``pin_language``, and how sure it is of the language: the engine's probability when it was detected
    here, 1.0 when it was already fixed (by the caller, the registry entry, or an English-only model: as
    faster-whisper reports a given language), None when the engine detects it clip by clip."""
    if options.language is None and engine.is_multilingual:
        detected, probability = engine.detect_language_probability(audio)
        if detected:
            return replace(options, language=detected), probability
        return options, None
    return options, 1.0 if options.language else None


def check_engine_can_honour(options: TranscribeOptions, engine: ASREngine, spec: ModelSpec) -> None:
    """Keywords and token log-probabilities are refused, naming the request's field, by a model whose engine
    cannot give them: never silently left out."""
    if options.keywords and not engine.takes_keywords:
        raise InvalidInputError(
            f"The model {spec.id!r} ({spec.engine} engine) cannot be biased towards keywords.", input="keywords"
        )
    if options.logprobs and not engine.returns_logprobs:
        raise InvalidInputError(
            f"The model {spec.id!r} ({spec.engine} engine) cannot return token log-probabilities.",
            input="token_logprobs",
        )
