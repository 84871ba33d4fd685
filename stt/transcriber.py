"""One transcription request from end to end: check the options, decode once, run the model, clean up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from strategies.base import ASRStrategy

from .audio import SAMPLE_RATE, AudioSource, decode_audio, is_silent
from .devices import release_memory
from .diarize import DiarizationRunner, DiarizeOptions, attribute_speakers
from . import metrics
from .errors import APIError, InvalidRequestError
from .languages import normalize_language
from .longform import stream_long, transcribe_long
from .model_pool import ModelPool
from .registry import ModelSpec
from .request_log import log_request
from .results import Segment, Transcription, TranscribeOptions, TranscriptionResponse


class Transcriber:
    def __init__(
        self,
        pool: ModelPool,
        default_model: str,
        max_audio_duration_s: float | None = None,
        log_transcripts: bool = False,
        diarizer: DiarizationRunner | None = None,
    ) -> None:
        self.pool = pool
        self.registry = pool.registry
        self.default_model = default_model
        self.max_audio_duration_s = max_audio_duration_s
        self.log_transcripts = log_transcripts
        self.diarizer = diarizer

    def transcribe(
        self,
        source: AudioSource,
        model_id: str | None,
        options: TranscribeOptions,
        diarize: DiarizeOptions | None = None,
    ) -> TranscriptionResponse:
        """Transcribe; with ``diarize``, also attribute each segment and word to a speaker."""
        with self._metered(model_id) as meter:
            if diarize is not None and self.diarizer is None:
                raise InvalidRequestError("Speaker diarization is switched off on this server.", param="diarize")
            keep_words = options.word_timestamps
            if diarize is not None:
                options = replace(options, word_timestamps=True)  # speakers are assigned word by word
            spec, options, audio = self._prepare(source, model_id, options)
            started = time.perf_counter()
            try:
                if is_silent(audio):
                    result = _empty_result(audio, options)
                else:
                    result = self._decode(spec, audio, options)
                    if diarize is not None:
                        turns = self.diarizer.diarize(audio, diarize)  # the same decoded audio
                        result = attribute_speakers(result, turns, keep_words)
            finally:
                del audio
                release_memory()
            processing_s = time.perf_counter() - started
            meter.done(result.duration, processing_s, result.text if self.log_transcripts else None)
        return TranscriptionResponse(**result.model_dump(), model_id=spec.id, processing_time_s=round(processing_s, 4))

    def stream(self, source: AudioSource, model_id: str | None, options: TranscribeOptions) -> Iterator[Segment]:
        """Segments as the engine decodes them. Errors in the request surface at the first ``next()``."""
        with self._metered(model_id) as meter:
            spec, options, audio = self._prepare(source, model_id, options)
            started = time.perf_counter()
            duration = len(audio) / SAMPLE_RATE
            try:
                if not is_silent(audio):
                    with self.pool.use(spec.id) as strategy:
                        options = strategy.with_language(audio, _fit_to_model(options, strategy, spec))
                        yield from stream_long(audio, options, self.pool.decoder(spec.id))
            finally:
                del audio
                release_memory()
            meter.done(duration, time.perf_counter() - started)

    def _decode(self, spec: ModelSpec, audio: np.ndarray, options: TranscribeOptions) -> Transcription:
        """The whole file: its clips all go to the model's batcher at once, to share batches with other requests'."""
        with self.pool.use(spec.id) as strategy:
            options = strategy.with_language(audio, _fit_to_model(options, strategy, spec))
            return transcribe_long(audio, options, self.pool.decoder(spec.id), batch_size=None)

    @contextmanager
    def _metered(self, model_id: str | None) -> Iterator[_Meter]:
        """Metrics and the request log line for one request, successful or not."""
        requested = model_id or self.default_model
        meter = _Meter(requested if requested in self.registry else "unknown")
        try:
            yield meter
        except APIError as exc:
            meter.failed(int(exc.status), exc.code or exc.error_type)
            raise
        except Exception:
            meter.failed(500, "internal_error")
            raise

    def _prepare(
        self, source: AudioSource, model_id: str | None, options: TranscribeOptions
    ) -> tuple[ModelSpec, TranscribeOptions, np.ndarray]:
        spec = self.registry.get(model_id or self.default_model)
        options = replace(options, language=normalize_language(options.language) or spec.language)
        return spec, options, decode_audio(source, max_duration_s=self.max_audio_duration_s)


@dataclass
class _Meter:
    model: str

    def done(self, audio_seconds: float, processing_seconds: float, text: str | None = None) -> None:
        metrics.record_success(self.model, audio_seconds, processing_seconds)
        log_request(model=self.model, status=200, audio_s=audio_seconds, processing_s=processing_seconds, text=text)

    def failed(self, status: int, code: str) -> None:
        metrics.record_error(self.model, code)
        log_request(model=self.model, status=status, error_code=code)


def _empty_result(audio: np.ndarray, options: TranscribeOptions) -> Transcription:
    return Transcription(text="", language=options.language, duration=len(audio) / SAMPLE_RATE, segments=[])


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
