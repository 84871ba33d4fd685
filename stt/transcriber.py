"""One transcription request from end to end: check the options, decode once, run the model, clean up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from strategies.base import ASRStrategy

from .audio import AudioSource, decode_audio
from .devices import release_memory
from .errors import InvalidRequestError
from .languages import normalize_language
from .model_pool import ModelPool
from .registry import ModelSpec
from .results import Segment, TranscribeOptions, TranscriptionResponse


class Transcriber:
    def __init__(self, pool: ModelPool, default_model: str, max_audio_duration_s: float | None = None) -> None:
        self.pool = pool
        self.registry = pool.registry
        self.default_model = default_model
        self.max_audio_duration_s = max_audio_duration_s

    def transcribe(self, source: AudioSource, model_id: str | None, options: TranscribeOptions) -> TranscriptionResponse:
        spec, options, audio = self._prepare(source, model_id, options)
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

    def stream(self, source: AudioSource, model_id: str | None, options: TranscribeOptions) -> Iterator[Segment]:
        """Segments as the engine decodes them. Errors in the request surface at the first ``next()``."""
        spec, options, audio = self._prepare(source, model_id, options)
        try:
            with self.pool.use(spec.id) as strategy:
                yield from strategy.stream(audio, _fit_to_model(options, strategy, spec))
        finally:
            del audio
            release_memory()

    def _prepare(
        self, source: AudioSource, model_id: str | None, options: TranscribeOptions
    ) -> tuple[ModelSpec, TranscribeOptions, np.ndarray]:
        spec = self.registry.get(model_id or self.default_model)
        options = replace(options, language=normalize_language(options.language) or spec.language)
        return spec, options, decode_audio(source, max_duration_s=self.max_audio_duration_s)


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
