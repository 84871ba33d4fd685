"""Whisper-family seq2seq checkpoints through the transformers ASR pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, pipeline

from core.audio import SAMPLE_RATE
from core.model_files import resolve_source
from core.types import Segment, Transcription, TranscribeOptions, Word

from .base import ASRStrategy
from .hf_common import language_and_task, module_bytes, segments_from_words, torch_dtype

CLIP_SAMPLES = 30 * SAMPLE_RATE
# transformers' equivalents of OpenAI's fallback thresholds (its compression ratio is zlib on tokens).
TEMPERATURE_FALLBACK: dict[str, Any] = {
    "temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    "compression_ratio_threshold": 1.35,
    "logprob_threshold": -1.0,
}


class TransformersStrategy(ASRStrategy):
    _pipe: Any = None
    _processor: Any = None

    @property
    def is_loaded(self) -> bool:
        return self._pipe is not None

    @property
    def is_multilingual(self) -> bool:
        return bool(getattr(self._pipe.model.generation_config, "is_multilingual", True))

    def load(self) -> None:
        source = resolve_source(self.spec.model)
        hub = self.runtime.hub.from_pretrained_kwargs(self.spec.revision)
        dtype = torch_dtype(self.spec, self.runtime.device)
        model = AutoModelForSpeechSeq2Seq.from_pretrained(
            source,
            dtype=dtype,
            attn_implementation="sdpa",
            trust_remote_code=self.spec.trust_remote_code,
            **hub,
        )
        processor_source = resolve_source(self.spec.processor) if self.spec.processor else source
        processor_hub = hub if processor_source == source else self.runtime.hub.from_pretrained_kwargs()
        self._processor = AutoProcessor.from_pretrained(processor_source, **processor_hub)
        tokenizer = self._processor.tokenizer
        if tokenizer.pad_token_id is None:  # batching chunks pads with it; Whisper pads with end-of-text
            tokenizer.pad_token_id = model.generation_config.eos_token_id
        self._pipe = pipeline(
            "automatic-speech-recognition",
            model=model,
            tokenizer=self._processor.tokenizer,
            feature_extractor=self._processor.feature_extractor,
            dtype=dtype,
            device=self.runtime.device,
        )

    def memory_bytes(self) -> int:
        return module_bytes(self._pipe.model) if self._pipe is not None else super().memory_bytes()

    def _generate_kwargs(self, options: TranscribeOptions) -> dict[str, Any]:
        kwargs: dict[str, Any] = language_and_task(options, self.is_multilingual)
        if options.temperature in (None, 0.0):
            kwargs.update(TEMPERATURE_FALLBACK)
        else:
            kwargs.update(temperature=options.temperature, do_sample=True)
        if options.initial_prompt:
            kwargs["prompt_ids"] = torch.as_tensor(
                self._processor.get_prompt_ids(options.initial_prompt), device=self._pipe.device
            )
        return kwargs

    def detect_language(self, audio: np.ndarray) -> str | None:
        assert self._pipe is not None, "detect_language() before load()"
        model = self._pipe.model
        features = self._processor.feature_extractor(
            audio[:CLIP_SAMPLES], sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features.to(model.device, dtype=model.dtype)
        with torch.inference_mode():
            [token_id] = model.detect_language(features).tolist()
        return self._processor.tokenizer.convert_ids_to_tokens(token_id).strip("<|>")

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        assert self._pipe is not None, "transcribe_clips() before load()"
        if not clips:
            return []
        with torch.inference_mode():
            outputs = self._pipe(
                [{"raw": clip, "sampling_rate": SAMPLE_RATE} for clip in clips],
                batch_size=len(clips),
                return_timestamps="word" if options.word_timestamps else True,
                return_language=self.is_multilingual,
                generate_kwargs=self._generate_kwargs(options),
            )
        return [self._transcription(output, len(clip) / SAMPLE_RATE, options) for clip, output in zip(clips, outputs)]

    def _transcription(self, output: dict[str, Any], duration: float, options: TranscribeOptions) -> Transcription:
        chunks = output.get("chunks") or []
        if options.word_timestamps:
            segments = segments_from_words([_word(c, duration) for c in chunks])
        else:
            segments = [_segment(i, c, duration) for i, c in enumerate(c for c in chunks if c["text"].strip())]
        language = next((c.get("language") for c in chunks if c.get("language")), None)
        return Transcription(
            text=output["text"].strip(),
            language=options.language or language or ("en" if not self.is_multilingual else None),
            duration=duration,
            segments=segments,
        )

    def unload(self) -> None:
        self._pipe = None
        self._processor = None


def _span(chunk: dict[str, Any], duration: float) -> tuple[float, float]:
    start, end = chunk["timestamp"]
    start = float(start or 0.0)
    end = float(end) if end is not None else duration
    return start, max(start, min(end, duration))


def _segment(index: int, chunk: dict[str, Any], duration: float) -> Segment:
    start, end = _span(chunk, duration)
    return Segment(id=index, start=start, end=end, text=chunk["text"])


def _word(chunk: dict[str, Any], duration: float) -> Word:
    start, end = _span(chunk, duration)
    return Word(start=start, end=end, word=chunk["text"])
