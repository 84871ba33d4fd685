"""One transcription request from end to end: prepare it (``pipeline.preparation``), decode the audio once (its
bytes reserved in the audio memory budget first), skip what holds nothing to transcribe, run the model (and the
diarizer), clean up. Returns the types every route shares."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from core.audio import SAMPLE_RATE, AudioSource, AudioUpload, open_audio
from core.audio_memory import AudioMemoryBudget
from core.devices import release_memory
from core.errors import InvalidInputError, ModelUnavailableError, OverloadedError
from core.no_speech import nothing_to_transcribe
from core.registry import ModelRegistry, ModelSpec
from core.types import DiarizeOptions, Segment, SpeakerTurn, Transcription, TranscribeOptions, TranscriptionResult

from .known_speakers import diarize_naming_known_speakers
from .longform import stream_long, transcribe_long
from .pool import ModelPool
from .preparation import PreparedRequest, decoding_options, prepare, transcription_model
from .speakers import attribute_speakers


@dataclass(frozen=True)
class DiarizationResult:
    """Who spoke when in one upload, without a transcript."""

    turns: list[SpeakerTurn]
    """Sorted by start; overlapped speech is overlapping turns of different speakers, when the diarizer finds it."""
    duration: float
    model_id: str
    """The diarizer that made the turns."""
    processing_s: float


class Transcriber:
    def __init__(
        self,
        pool: ModelPool,
        default_model: str,
        max_audio_duration_s: float | None = None,
        diarizer_id: str | None = None,
        max_concurrent_decodes: int = 2,
        audio_budget: AudioMemoryBudget | None = None,
    ) -> None:
        self.pool = pool
        self.registry: ModelRegistry = pool.registry
        self.default_model = default_model
        self.max_audio_duration_s = max_audio_duration_s
        self.diarizer_id = diarizer_id
        """The registry id of the diarizer; None when diarization is switched off."""
        self._decode_slots = threading.BoundedSemaphore(max_concurrent_decodes)
        """Uploads decoded at once: decoding is CPU-bound."""
        self.audio_budget = audio_budget or AudioMemoryBudget()
        """The memory all requests' decoded audio may take (None: counted, unlimited)."""

    def resolve(self, model_id: str | None) -> ModelSpec:
        """The transcription model a request names, or the default one."""
        return transcription_model(self.registry, model_id, self.default_model)

    def transcribe(
        self,
        source: AudioSource,
        model_id: str | None,
        options: TranscribeOptions,
        diarize: DiarizeOptions | None = None,
        cancelled: threading.Event | None = None,
        background: bool = False,
    ) -> TranscriptionResult:
        """Transcribe; with ``diarize``, also attribute each segment and word to a speaker. Setting
        ``cancelled`` (the client has gone) withdraws the clips not yet decoded. ``background``: work of lower
        priority (a batch item), leased apart from interactive requests (``ModelPool.use``); start it when
        ``has_room`` says so."""
        keep_words = options.word_timestamps
        options = self._check_diarize(options, diarize)
        request, audio = self._prepare(source, model_id, options, cancelled, background)
        started = time.perf_counter()
        try:
            if nothing_to_transcribe(audio):
                result = _empty_result(audio, request.options)
            else:
                with self.pool.use(request.spec, len(audio) / SAMPLE_RATE, background) as lease:
                    decode = partial(lease.decode, cancelled=cancelled)
                    decoding, probability = decoding_options(lease, audio, request.options)
                    result = transcribe_long(audio, decoding, decode, batch_size=None)
                result = result.model_copy(update={"language_probability": probability})
                if diarize is not None:
                    result = self._attribute_speakers(result, audio, diarize, keep_words, background)
        finally:
            del audio
            release_memory()
        return TranscriptionResult(result, request.spec.id, time.perf_counter() - started)

    def has_room(self, model_id: str | None) -> bool:
        """Whether background work for ``model_id`` (None: the default model) may start now without taking an
        interactive request's place (``ModelPool.has_room``)."""
        return self.pool.has_room(self.resolve(model_id).id)

    def open_stream(
        self,
        source: AudioSource,
        model_id: str | None,
        options: TranscribeOptions,
        diarize: DiarizeOptions | None = None,
    ) -> TranscriptionStream:
        """Check the request and decode its audio now; the model runs as the stream's segments are read.

        With ``diarize`` the segments still come as they are decoded (with words, which speakers need); once
        the last one is read the diarizer runs on the same audio, and ``speaker_segments`` holds the transcript
        split into speaker turns."""
        keep_words = options.word_timestamps
        options = self._check_diarize(options, diarize)
        request, audio = self._prepare(source, model_id, options)
        attribute = None
        if diarize is not None:
            attribute = partial(self._attribute_speakers, diarize=diarize, keep_words=keep_words)
        return TranscriptionStream(self.pool, request, audio, attribute)

    def diarize(
        self,
        source: AudioSource,
        model_id: str | None,
        diarize: DiarizeOptions,
        cancelled: threading.Event | None = None,
    ) -> DiarizationResult:
        """Who spoke when, without a transcript: the diarizer ``model_id`` names (None: the server's), on the
        upload's audio decoded as for a transcription (duration limit, audio memory budget, decode slots)."""
        spec = self._diarizer_spec(model_id)
        audio = self._admitted_audio(spec, source, cancelled)
        started = time.perf_counter()
        try:
            duration = len(audio) / SAMPLE_RATE
            turns = [] if nothing_to_transcribe(audio) else self._diarized_turns(spec, audio, diarize)
        finally:
            del audio
            release_memory()
        return DiarizationResult(turns, duration, spec.id, time.perf_counter() - started)

    def _diarizer_spec(self, model_id: str | None) -> ModelSpec:
        """The diarizer a request names (a diarization model of the registry), or the server's."""
        if model_id is not None:
            return self.registry.get(model_id, kind="diarization")
        if self.diarizer_id is None:
            raise InvalidInputError("Speaker diarization is switched off on this server.", input="model")
        return self.registry.get(self.diarizer_id, kind="diarization")

    def _check_diarize(self, options: TranscribeOptions, diarize: DiarizeOptions | None) -> TranscribeOptions:
        if diarize is None:
            return options
        if self.diarizer_id is None:
            raise InvalidInputError("Speaker diarization is switched off on this server.", input="diarize")
        return replace(options, word_timestamps=True)  # speakers are assigned word by word

    def _attribute_speakers(
        self, result: Transcription, audio: np.ndarray, diarize: DiarizeOptions, keep_words: bool,
        background: bool = False,
    ) -> Transcription:
        assert self.diarizer_id is not None
        spec = self.registry.get(self.diarizer_id, kind="diarization")
        turns = self._diarized_turns(spec, audio, diarize, blame="diarize", background=background)  # the same decoded audio
        return attribute_speakers(result, turns, keep_words)

    def _diarized_turns(
        self, spec: ModelSpec, audio: np.ndarray, diarize: DiarizeOptions, blame: str = "model",
        background: bool = False,
    ) -> list[SpeakerTurn]:
        """The diarizer's turns on ``audio``; a diarizer that is unavailable or busy is blamed on ``blame``, the
        request field that asked for it."""
        try:
            with self.pool.use(spec, background=background) as lease:
                return diarize_naming_known_speakers(lease, audio, diarize)
        except (ModelUnavailableError, OverloadedError) as exc:  # the request's fault lies in asking for speakers
            code = "diarizer_unavailable" if isinstance(exc, ModelUnavailableError) else exc.code
            raise type(exc)(exc.message, input=blame, code=code) from exc

    def _prepare(
        self,
        source: AudioSource,
        model_id: str | None,
        options: TranscribeOptions,
        cancelled: threading.Event | None = None,
        background: bool = False,
    ) -> tuple[PreparedRequest, np.ndarray]:
        """The request prepared (checked before its audio is decoded), and its audio."""
        request = prepare(self.pool, model_id, self.default_model, options)
        return request, self._admitted_audio(request.spec, source, cancelled, background)

    def _admitted_audio(
        self, spec: ModelSpec, source: AudioSource, cancelled: threading.Event | None, background: bool = False
    ) -> np.ndarray:
        """The upload's audio for ``spec``'s queue: admitted from the duration its header declares (refused before
        decoding when its wait would be too long), then decoded."""
        with open_audio(source, max_duration_s=self.max_audio_duration_s) as upload:
            with self.pool.reserved(spec, upload.declared_s, background):
                return self._decode(upload, cancelled)

    def decode(self, source: AudioSource, cancelled: threading.Event | None = None) -> np.ndarray:
        """An upload's audio (16 kHz mono), within the duration limit. Its bytes are reserved in the audio memory
        budget once the header is read, before it takes one of the service's decode slots: a request that waits
        for memory (briefly, then 429; setting ``cancelled`` ends the wait) holds no slot. The audio keeps its
        bytes in the budget until it is freed."""
        with open_audio(source, max_duration_s=self.max_audio_duration_s) as upload:
            return self._decode(upload, cancelled)

    def _decode(self, upload: AudioUpload, cancelled: threading.Event | None) -> np.ndarray:
        reservation = self.audio_budget.reserve(upload.expected_bytes, cancelled=cancelled)
        try:
            with self._decode_slots:
                return upload.decode(reservation)
        except BaseException:
            reservation.release()
            raise


SpeakerAttribution = Callable[[Transcription, np.ndarray], Transcription]


class TranscriptionStream:
    """A checked request whose audio is decoded; ``segments()`` runs the model clip by clip, once."""

    def __init__(
        self,
        pool: ModelPool,
        request: PreparedRequest,
        audio: np.ndarray,
        attribute: SpeakerAttribution | None = None,
    ) -> None:
        self.model_id = request.spec.id
        self.duration = len(audio) / SAMPLE_RATE
        self.language_probability: float | None = None
        """Known once the first segment is read (see ``pin_language_probability``)."""
        self.speaker_segments: list[Segment] | None = None
        """With diarization: the transcript in speaker turns, once every segment has been read."""
        self._pool = pool
        self._request = request
        self._audio: np.ndarray | None = audio
        self._attribute = attribute

    def segments(self) -> Iterator[Segment]:
        """Segments as the model decodes them; model errors (busy, unavailable) surface at the first ``next()``."""
        audio, self._audio = self._audio, None  # the stream holds the audio only until it is read
        if audio is None:
            raise RuntimeError("the stream's segments were already read")
        try:
            decoded: list[Segment] = []
            if not nothing_to_transcribe(audio):
                with self._pool.use(self._request.spec, audio_s=self.duration) as lease:
                    options, self.language_probability = decoding_options(lease, audio, self._request.options)
                    for segment in stream_long(audio, options, lease.decode):
                        decoded.append(segment)
                        yield segment
            if self._attribute is not None:
                self.speaker_segments = self._speakers(audio, decoded) if decoded else []
        finally:
            del audio
            release_memory()

    def _speakers(self, audio: np.ndarray, decoded: list[Segment]) -> list[Segment]:
        assert self._attribute is not None
        text = "".join(segment.text for segment in decoded).strip()
        language = self._request.options.language
        heard = Transcription(text=text, language=language, duration=self.duration, segments=decoded)
        return self._attribute(heard, audio).segments


def _empty_result(audio: np.ndarray, options: TranscribeOptions) -> Transcription:
    return Transcription(text="", language=options.language, duration=len(audio) / SAMPLE_RATE, segments=[])
