"""CTranslate2 Whisper models through faster-whisper."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from faster_whisper import WhisperModel

from stt.audio import SAMPLE_RATE
from stt.model_files import local_model_path
from stt.results import Segment, Transcription, TranscribeOptions, Word

from .base import ASRStrategy

# faster-whisper's default fallback schedule, used when a request does not pin a temperature.
TEMPERATURE_FALLBACK = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class CTranslate2Strategy(ASRStrategy):
    _model: WhisperModel | None = None

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    @property
    def is_multilingual(self) -> bool:
        assert self._model is not None
        return self._model.model.is_multilingual

    def _compute_type(self) -> str:
        if self.spec.dtype != "auto":
            return self.spec.dtype
        return "float16" if self.runtime.device == "cuda" else "int8"

    def load(self) -> None:
        local = local_model_path(self.spec.model)
        hub = self.runtime.hub
        self._model = WhisperModel(
            str(local) if local is not None else self.spec.model,
            device=self.runtime.device,
            compute_type=self._compute_type(),
            cpu_threads=self.runtime.cpu_threads,
            download_root=str(hub.cache_dir) if hub.cache_dir else None,
            revision=self.spec.revision,
            use_auth_token=hub.token,
        )

    def _decode(self, audio: np.ndarray, options: TranscribeOptions):
        """faster-whisper's lazy segment generator (decoding happens as it is iterated) and its info."""
        assert self._model is not None, "transcribe() before load()"
        temperature = TEMPERATURE_FALLBACK if options.temperature in (None, 0.0) else options.temperature
        return self._model.transcribe(
            audio,
            language=options.language,
            task=options.task,
            word_timestamps=options.word_timestamps,
            initial_prompt=options.initial_prompt,
            temperature=temperature,
            beam_size=5,
        )

    def stream(self, audio: np.ndarray, options: TranscribeOptions) -> Iterator[Segment]:
        segments, _ = self._decode(audio, options)
        for segment in segments:
            yield _to_segment(segment, options.word_timestamps)

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcription:
        segments_iter, info = self._decode(audio, options)
        segments = [_to_segment(s, options.word_timestamps) for s in segments_iter]
        return Transcription(
            text="".join(s.text for s in segments).strip(),
            language=info.language,
            duration=len(audio) / SAMPLE_RATE,
            segments=segments,
        )

    def unload(self) -> None:
        if self._model is not None:
            self._model.model.unload_model()
        self._model = None


def _to_segment(segment, with_words: bool) -> Segment:
    words = []
    if with_words:
        words = [Word(start=w.start, end=w.end, word=w.word, probability=w.probability) for w in segment.words or []]
    return Segment(
        id=segment.id - 1,  # faster-whisper counts from 1, OpenAI from 0
        seek=segment.seek,
        start=segment.start,
        end=segment.end,
        text=segment.text,
        tokens=list(segment.tokens),
        temperature=segment.temperature,
        avg_logprob=segment.avg_logprob,
        compression_ratio=segment.compression_ratio,
        no_speech_prob=segment.no_speech_prob,
        words=words,
    )
