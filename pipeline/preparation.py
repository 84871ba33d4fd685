"""One request's preparation, the same for files, streams, chat and live sessions: checked once before its model
runs (which model, which language, its text within bounds), then fitted to the leased model (what its engine can do,
one language for the audio)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInputError
from core.registry import ModelRegistry, ModelSpec
from core.text import check_characters, check_unicode, over_utf8_size, utf8_size
from core.types import TranscribeOptions

from .capabilities import check_engine_can_honour, fit_to_model, pin_language_probability, requested_language
from .pool import ModelLease, ModelPool


MAX_PROMPT_BYTES = 16 * 2**10
"""A prompt's size in UTF-8 (``prompt``, a realtime session's prompt, a chat message's text as a transcription
prompt): Whisper reads only the last 223 tokens of it (``strategies.whisper.prompt``), a kilobyte or two of text, so
sixteen kilobytes leave room for any prompt a client means, and a larger one is refused before it is tokenised."""
MAX_KEYWORD_CHARACTERS = 500
"""All keywords together, separators not counted: Whisper reads them in its prompt, which holds 223 tokens."""


def check_prompt(prompt: str | None, input: str = "prompt") -> None:
    """A prompt within ``MAX_PROMPT_BYTES`` and free of control characters but line breaks and tabs (see
    ``core.text``); InvalidInputError naming ``input``, measured before the prompt is copied or tokenised."""
    if prompt is None:
        return
    if over_utf8_size(prompt, MAX_PROMPT_BYTES):
        raise InvalidInputError(
            f"{input} is larger than {_size(MAX_PROMPT_BYTES)} in UTF-8: Whisper reads only the last 223 tokens "
            "of a prompt (about a kilobyte of text), so send its end.",
            input=input,
        )
    check_characters(prompt, input, lines=True)


def check_keywords(keywords: Sequence[str]) -> None:
    """Keywords of at most ``MAX_KEYWORD_CHARACTERS`` in all (the separators the prompt puts between them not
    counted), each on one line and free of control characters."""
    if sum(len(keyword) for keyword in keywords) > MAX_KEYWORD_CHARACTERS:
        raise InvalidInputError(
            f"keywords are too long: at most {MAX_KEYWORD_CHARACTERS} characters in all (Whisper reads them in its "
            "prompt, which holds 223 tokens).",
            input="keywords",
        )
    for keyword in keywords:
        check_characters(keyword, "keywords", lines=False)


class TextBudget:
    """The text one request may carry in all (a chat request's messages), in UTF-8 bytes: each piece is taken as it
    is read, and the one that goes over (or holds a lone surrogate, which no tokenizer can read) is refused
    (InvalidInputError naming it) before it is copied or tokenised."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0

    def take(self, text: str, input: str) -> str:
        left = self.max_bytes - self.used
        if over_utf8_size(text, left):
            raise InvalidInputError(
                f"The request's text is larger than the limit of {_size(self.max_bytes)} in UTF-8.",
                input=input,
                code="string_above_max_length",
            )
        check_unicode(text, input)
        self.used += utf8_size(text)
        return text


def _size(max_bytes: int) -> str:
    return f"{max_bytes // 2**10} KiB" if max_bytes % 2**10 == 0 else f"{max_bytes} bytes"


def check_text(options: TranscribeOptions) -> None:
    """The request's text (its prompt and keywords) within bounds, before anything reads it."""
    check_prompt(options.initial_prompt)
    check_keywords(options.keywords)


@dataclass(frozen=True)
class PreparedRequest:
    """A request checked before its model runs: the model's registry entry, and the options with the request's
    language resolved."""

    spec: ModelSpec
    options: TranscribeOptions


def transcription_model(registry: ModelRegistry, model_id: str | None, default_model: str) -> ModelSpec:
    """The transcription model a request names, or the default one."""
    return registry.get(model_id or default_model, kind="transcription")


def prepare(pool: ModelPool, model_id: str | None, default_model: str, options: TranscribeOptions) -> PreparedRequest:
    """Everything about a request that can be checked before its model runs: the model, and the language (an
    ISO-639-1 code, or the model's default), refused now when the model is known to be English-only, and the text
    (``check_text``)."""
    check_text(options)
    spec = transcription_model(pool.registry, model_id, default_model)
    options = requested_language(options, spec)
    multilingual = pool.known_multilingual(spec.id)
    if multilingual is not None:  # a model that has loaded once: an impossible language is refused now
        fit_to_model(options, multilingual, spec)
    return PreparedRequest(spec, options)


def decoding_options(
    lease: ModelLease, audio: np.ndarray, options: TranscribeOptions
) -> tuple[TranscribeOptions, float | None]:
    """The options the leased model decodes ``audio`` with (what its engine can do, one language for every clip),
    and the probability of that language (see ``pin_language_probability``)."""
    check_engine_can_honour(options, lease.asr, lease.spec)
    return pin_language_probability(lease.asr, audio, fit_to_model(options, lease.asr.is_multilingual, lease.spec))
