"""Custom Whisper-derived architectures loaded with ``trust_remote_code`` (LiteASR style).

Such models take nothing but ``generate(input_features)``: extra kwargs like ``forced_decoder_ids``
crash them. Language, task and timestamps are therefore set on the model's ``generation_config``, which is
replaced by the Whisper generation config of the processor repo. A batch of clips is one ``generate`` call on
their stacked ``input_features``.  Before it, one plain forward pass (encoder, one decoder step) gives each
clip's no-speech probability and, when the request names no language, its language, which is set on the
config too: every result carries a language.

Whisper's safeguards cannot come from the generation config.  transformers' Whisper generate takes its
temperatures only from its ``temperature`` argument; without it, it decodes greedily once, so there is no
temperature fallback, and its log-prob check (``logprob_threshold``) then raises a TypeError on
``temperature > 0.0``; its no-speech gate needs that check.  The engine applies Whisper's no-speech rule
itself: a clip whose no-speech probability is above 0.6 is dropped when its decoding's average log-prob is
below -1.0, or when the decoding fails the compression-ratio check (a repetition loop that a fallback would
have decoded again).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, AutoProcessor, GenerationConfig

from core.audio import SAMPLE_RATE
from core.model_files import resolve_source
from core.registry import ModelSpec
from core.types import Segment, Transcription, TranscribeOptions

from .base import ASRStrategy, RuntimeContext
from .hf_common import (
    COMPRESSION_RATIO_THRESHOLD,
    LOGPROB_THRESHOLD,
    forced_average_logprob,
    language_setting,
    module_bytes,
    probe_speech,
    token_compression_ratio,
    torch_dtype,
    whisper_prefix,
)
from .safeguards import NO_SPEECH_THRESHOLD

DEFAULT_PROCESSOR = "openai/whisper-large-v3"
CLIP_SAMPLES = 30 * SAMPLE_RATE


class RemoteCodeStrategy(ASRStrategy):
    _model: Any = None
    _processor: Any = None
    _generation_config: GenerationConfig | None = None

    def __init__(self, spec: ModelSpec, runtime: RuntimeContext) -> None:
        super().__init__(spec, runtime)
        self._generate_lock = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    @property
    def is_multilingual(self) -> bool:
        return bool(getattr(self._generation_config, "is_multilingual", True))

    def load(self) -> None:
        if not self.spec.trust_remote_code:  # the registry refuses this too; never run unmarked code
            raise PermissionError(f"model {self.spec.id!r} is not marked trust_remote_code by the operator")
        source = resolve_source(self.spec.model)
        processor_source = resolve_source(self.spec.processor or DEFAULT_PROCESSOR)
        self._dtype = torch_dtype(self.spec, self.runtime.device)
        model = AutoModel.from_pretrained(
            source,
            trust_remote_code=True,
            dtype=self._dtype,
            **self.runtime.hub.from_pretrained_kwargs(self.spec.revision),
        )
        hub = self.runtime.hub.from_pretrained_kwargs()
        self._processor = AutoProcessor.from_pretrained(processor_source, **hub)
        self._generation_config = GenerationConfig.from_pretrained(processor_source, **hub)
        self._generation_config.return_timestamps = True
        self._model = model.to(self.runtime.device).eval()

    def memory_bytes(self) -> int:
        return module_bytes(self._model) if self._model is not None else super().memory_bytes()

    def _features(self, clips: Sequence[np.ndarray]) -> torch.Tensor:
        features = self._processor.feature_extractor(
            [clip[:CLIP_SAMPLES] for clip in clips], sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features
        return features.to(self.runtime.device, dtype=self._dtype)

    def detect_language(self, audio: np.ndarray) -> str | None:
        assert self._model is not None, "detect_language() before load()"
        if not self.is_multilingual:
            return "en"
        return probe_speech(self._model, self._generation_config, self._features([audio])).languages[0]

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        assert self._model is not None, "transcribe_clips() before load()"
        if not clips:
            return []
        features = self._features(clips)
        probe = probe_speech(self._model, self._generation_config, features)
        if self.is_multilingual and not options.language:
            languages = [detected or "en" for detected in probe.languages]
        else:
            languages = [options.language or "en"] * len(clips)
        config = copy.deepcopy(self._generation_config)
        if self.is_multilingual:
            config.task = options.task
            config.language = language_setting(languages)
        with self._generate_lock:  # the options travel on the model object itself
            self._model.generation_config = config
            with torch.inference_mode():
                token_batch = self._model.generate(features).cpu()
        results = []
        for index, (clip, token_ids, language) in enumerate(zip(clips, token_batch, languages, strict=True)):
            duration = len(clip) / SAMPLE_RATE
            token_ids = token_ids[token_ids != config.pad_token_id]
            doubtful = probe.no_speech_probs[index] > NO_SPEECH_THRESHOLD
            if doubtful and self._decoding_fails(features[index], token_ids, config, language):
                token_ids = token_ids[:0]  # Whisper's no-speech rule
            segments = self._clip_segments(token_ids, duration)
            results.append(
                Transcription(
                    text="".join(s.text for s in segments).strip(),
                    language=language,
                    duration=duration,
                    segments=segments,
                )
            )
        return results

    def _decoding_fails(
        self, features: torch.Tensor, token_ids: torch.Tensor, config: GenerationConfig, language: str
    ) -> bool:
        """Whether a clip's greedy decoding fails a check that would have sent it to temperature fallback."""
        if not len(token_ids):
            return False
        tokens = [*token_ids.tolist(), config.eos_token_id]  # Whisper counts the end-of-text token too
        if token_compression_ratio(tokens, self._model.config.vocab_size) > COMPRESSION_RATIO_THRESHOLD:
            return True
        prefix = whisper_prefix(config, language if self.is_multilingual else None, config.task or "transcribe")
        return forced_average_logprob(self._model, config, features, prefix, tokens) < LOGPROB_THRESHOLD

    def _clip_segments(self, token_ids: torch.Tensor, duration: float) -> list[Segment]:
        decoded = self._processor.tokenizer.decode(token_ids, skip_special_tokens=True, output_offsets=True)
        pieces = decoded.get("offsets") or [{"text": decoded["text"], "timestamp": (0.0, duration)}]
        segments = []
        for piece in pieces:
            if not piece["text"].strip():
                continue
            start, end = piece["timestamp"]
            start = min(float(start or 0.0), duration)
            end = min(duration, float(end)) if end is not None else duration
            segments.append(Segment(id=len(segments), start=start, end=max(start, end), text=piece["text"]))
        return segments

    def unload(self) -> None:
        self._model = None
        self._processor = None
        self._generation_config = None
