"""One transcription request from end to end: check the options, decode once, run the model, clean up."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from strategies.base import ASRStrategy

from .audio import decode_audio
from .devices import release_memory
from .errors import InvalidRequestError
from .languages import normalize_language
from .model_pool import ModelPool
from .registry import ModelSpec
from .results import TranscribeOptions, TranscriptionResponse


class Transcriber:
    def __init__(self, pool: ModelPool, default_model: str) -> None:
        self.pool = pool
        self.registry = pool.registry
        self.default_model = default_model

    def transcribe_file(self, path: Path, model_id: str | None, options: TranscribeOptions) -> TranscriptionResponse:
        spec = self.registry.get(model_id or self.default_model)
        options = replace(options, language=normalize_language(options.language) or spec.language)
        audio = decode_audio(path)
        started = time.perf_counter()
        try:
            with self.pool.use(spec.id) as strategy:
                result = strategy.transcribe(audio, _fit_to_model(options, strategy, spec))
        finally:
            del audio
            release_memory()
        return TranscriptionResponse(
            **result.model_dump(), model_id=spec.id, processing_time_s=round(time.perf_counter() - started, 4)
        )


def _fit_to_model(options: TranscribeOptions, strategy: ASRStrategy, spec: ModelSpec) -> TranscribeOptions:
    """English-only checkpoints: English in, English out; translating is transcribing."""
    if strategy.is_multilingual:
        return options
    if options.language not in (None, "en"):
        raise InvalidRequestError(
            f"The model {spec.id!r} is English-only and cannot transcribe language {options.language!r}.",
            param="language",
        )
    return replace(options, language="en", task="transcribe")
