"""CTranslate2 Whisper models through faster-whisper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

from core.audio import SAMPLE_RATE
from core.model_files import local_model_path
from core.types import Segment, Transcription, TranscribeOptions, Word

from .base import ASRStrategy

BEAM_SIZE = 5
# faster-whisper's own defaults for everything a request does not set.
_DECODING_DEFAULTS: dict[str, Any] = dict(
    beam_size=BEAM_SIZE,
    best_of=5,
    patience=1.0,
    length_penalty=1.0,
    repetition_penalty=1.0,
    no_repeat_ngram_size=0,
    log_prob_threshold=-1.0,
    no_speech_threshold=0.6,
    compression_ratio_threshold=2.4,
    condition_on_previous_text=False,
    prompt_reset_on_temperature=0.5,
    prefix=None,
    suppress_blank=True,
    without_timestamps=False,
    max_initial_timestamp=0.0,
    prepend_punctuations="\"'“¿([{-",
    append_punctuations="\"'.。,，!！?？:：”)]}、",
    multilingual=False,
    max_new_tokens=None,
    hallucination_silence_threshold=None,
    hotwords=None,
)


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

    def detect_language(self, audio: np.ndarray) -> str | None:
        assert self._model is not None, "detect_language() before load()"
        language, _, _ = self._model.detect_language(audio)
        return language

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        assert self._model is not None, "transcribe_clips() before load()"
        if not clips:
            return []
        if options.temperature:  # the batched decoder is deterministic; sampling needs the sequential one
            return [self._sampled(clip, options) for clip in clips]
        language = options.language or (self.detect_language(clips[0]) if self.is_multilingual else "en")
        tokenizer = Tokenizer(self._model.hf_tokenizer, self.is_multilingual, task=options.task, language=language)
        features = np.stack([pad_or_trim(self._model.feature_extractor(clip)[..., :-1]) for clip in clips])
        durations = [len(clip) / SAMPLE_RATE for clip in clips]
        outputs = BatchedInferencePipeline(self._model).forward(
            features,
            tokenizer,
            [{"offset": 0.0, "duration": duration, "segments": []} for duration in durations],
            _batched_options(tokenizer, options),
        )
        results = []
        for duration, pieces in zip(durations, outputs):
            segments = [_segment_from_dict(i, piece, options.word_timestamps) for i, piece in enumerate(pieces)]
            results.append(
                Transcription(
                    text="".join(s.text for s in segments).strip(),
                    language=language,
                    duration=duration,
                    segments=segments,
                )
            )
        return results

    def _sampled(self, clip: np.ndarray, options: TranscribeOptions) -> Transcription:
        """One clip through faster-whisper's sequential decoder, sampling at the requested temperature."""
        assert self._model is not None
        pieces, info = self._model.transcribe(
            clip,
            language=options.language,
            task=options.task,
            word_timestamps=options.word_timestamps,
            initial_prompt=options.initial_prompt,
            temperature=options.temperature,
            beam_size=BEAM_SIZE,
        )
        segments = [_to_segment(s, options.word_timestamps) for s in pieces]
        return Transcription(
            text="".join(s.text for s in segments).strip(),
            language=info.language,
            duration=len(clip) / SAMPLE_RATE,
            segments=segments,
        )

    def unload(self) -> None:
        if self._model is not None:
            self._model.model.unload_model()
        self._model = None


def _batched_options(tokenizer: Tokenizer, options: TranscribeOptions) -> TranscriptionOptions:
    return TranscriptionOptions(
        **_DECODING_DEFAULTS,
        temperatures=[0.0],  # fresh lists per call: the options object is faster-whisper's to use
        clip_timestamps=[],
        initial_prompt=options.initial_prompt,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        word_timestamps=options.word_timestamps,
    )


def _segment_from_dict(index: int, piece: dict[str, Any], with_words: bool) -> Segment:
    """A segment of faster-whisper's batched decoder (a dict) as ours."""
    words = [Word(**w) for w in piece.get("words") or []] if with_words else []
    return Segment(
        id=index,
        seek=piece["seek"],
        start=round(piece["start"], 3),
        end=round(piece["end"], 3),
        text=piece["text"],
        tokens=list(piece["tokens"]),
        temperature=0.0,
        avg_logprob=piece["avg_logprob"],
        compression_ratio=piece["compression_ratio"],
        no_speech_prob=piece["no_speech_prob"],
        words=words,
    )


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
