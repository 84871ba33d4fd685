"""One transcription request from end to end: resolve the model, check the options, decode the audio
once, run the model (and the diarizer), clean up. Returns the types every route shares."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import numpy as np

from core.audio import SAMPLE_RATE, AudioSource, decode_audio, is_silent
from core.devices import release_memory
from core.errors import InvalidInputError, ModelUnavailableError, OverloadedError
from core.registry import ModelRegistry, ModelSpec
from core.types import DiarizeOptions, Segment, Transcription, TranscribeOptions, TranscriptionResult

from .language import fit_to_model, pin_language, requested_language
from .longform import stream_long, transcribe_long
from .model_pool import ModelLease, ModelPool
from .speakers import attribute_speakers


class Transcriber:
    def __init__(
        self,
        pool: ModelPool,
        default_model: str,
        max_audio_duration_s: float | None = None,
        diarizer_id: str | None = None,
        max_concurrent_decodes: int = 2,
    ) -> None:
        self.pool = pool
        self.registry: ModelRegistry = pool.registry
        self.default_model = default_model
        self.max_audio_duration_s = max_audio_duration_s
        self.diarizer_id = diarizer_id
        """The registry id of the diarizer; None when diarization is switched off."""
        self._decode_slots = threading.BoundedSemaphore(max_concurrent_decodes)
        """Uploads decoded at once: decoding is CPU-bound, and each one holds its decoded audio in memory."""

    def resolve(self, model_id: str | None) -> ModelSpec:
        """The transcription model a request names, or the default one."""
        return self.registry.get(model_id or self.default_model, kind="transcription")

    def transcribe(
        self,
        source: AudioSource,
        model_id: str | None,
        options: TranscribeOptions,
        diarize: DiarizeOptions | None = None,
        cancelled: threading.Event | None = None,
    ) -> TranscriptionResult:
        """Transcribe; with ``diarize``, also attribute each segment and word to a speaker. Setting
        ``cancelled`` (the client has gone) withdraws the clips not yet decoded."""
        if diarize is not None and self.diarizer_id is None:
            raise InvalidInputError("Speaker diarization is switched off on this server.", input="diarize")
        keep_words = options.word_timestamps
        if diarize is not None:
            options = replace(options, word_timestamps=True)  # speakers are assigned word by word
        spec, options, audio = self._prepare(source, model_id, options)
        started = time.perf_counter()
        try:
            if is_silent(audio):
                result = _empty_result(audio, options)
            else:
                with self.pool.use(spec) as lease:
                    decode = partial(lease.decode, cancelled=cancelled)
                    result = transcribe_long(audio, _decoding_options(lease, audio, options), decode, batch_size=None)
                if diarize is not None:
                    result = self._attribute_speakers(result, audio, diarize, keep_words)
        finally:
            del audio
            release_memory()
        return TranscriptionResult(result, spec.id, time.perf_counter() - started)

    def open_stream(self, source: AudioSource, model_id: str | None, options: TranscribeOptions) -> TranscriptionStream:
        """Check the request and decode its audio now; the model runs as the stream's segments are read."""
        spec, options, audio = self._prepare(source, model_id, options)
        return TranscriptionStream(self.pool, spec, options, audio)

    def _attribute_speakers(
        self, result: Transcription, audio: np.ndarray, diarize: DiarizeOptions, keep_words: bool
    ) -> Transcription:
        assert self.diarizer_id is not None
        try:
            with self.pool.use(self.registry.get(self.diarizer_id, kind="diarization")) as lease:
                turns = lease.diarize(audio, diarize)  # the same decoded audio
        except (ModelUnavailableError, OverloadedError) as exc:  # the request's fault lies in asking for speakers
            code = "diarizer_unavailable" if isinstance(exc, ModelUnavailableError) else exc.code
            raise type(exc)(exc.message, input="diarize", code=code) from exc
        return attribute_speakers(result, turns, keep_words)

    def _prepare(
        self, source: AudioSource, model_id: str | None, options: TranscribeOptions
    ) -> tuple[ModelSpec, TranscribeOptions, np.ndarray]:
        """Everything about the request that can be checked, checked before its audio is decoded."""
        spec = self.resolve(model_id)
        options = requested_language(options, spec)
        multilingual = self.pool.known_multilingual(spec.id)
        if multilingual is not None:  # a model that has loaded once: an impossible language is refused now
            fit_to_model(options, multilingual, spec)
        return spec, options, self.decode(source)

    def decode(self, source: AudioSource) -> np.ndarray:
        """An upload's audio (16 kHz mono), within the duration limit, in one of the service's decode slots."""
        with self._decode_slots:
            return decode_audio(source, max_duration_s=self.max_audio_duration_s)


class TranscriptionStream:
    """A checked request whose audio is decoded; ``segments()`` runs the model clip by clip, once."""

    def __init__(self, pool: ModelPool, spec: ModelSpec, options: TranscribeOptions, audio: np.ndarray) -> None:
        self.model_id = spec.id
        self.duration = len(audio) / SAMPLE_RATE
        self._pool = pool
        self._spec = spec
        self._options = options
        self._audio: np.ndarray | None = audio

    def segments(self) -> Iterator[Segment]:
        """Segments as the model decodes them; model errors (busy, unavailable) surface at the first ``next()``."""
        audio, self._audio = self._audio, None  # the stream holds the audio only until it is read
        if audio is None:
            raise RuntimeError("the stream's segments were already read")
        try:
            if not is_silent(audio):
                with self._pool.use(self._spec) as lease:
                    yield from stream_long(audio, _decoding_options(lease, audio, self._options), lease.decode)
        finally:
            del audio
            release_memory()


def _decoding_options(lease: ModelLease, audio: np.ndarray, options: TranscribeOptions) -> TranscribeOptions:
    """The options this model decodes this file with: what it can do, and one language for every clip."""
    return pin_language(lease.asr, audio, fit_to_model(options, lease.asr.is_multilingual, lease.spec))


def _empty_result(audio: np.ndarray, options: TranscribeOptions) -> Transcription:
    return Transcription(text="", language=options.language, duration=len(audio) / SAMPLE_RATE, segments=[])
