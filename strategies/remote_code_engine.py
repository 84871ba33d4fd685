"""Custom Whisper-derived architectures loaded with ``trust_remote_code`` (LiteASR style).

How it decodes, and where Whisper's safeguards hold: docs/engines.md."""

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

from .base import ASREngine, RuntimeContext
from .token_logprobs import spread_over_segments
from .torch_util import module_bytes, torch_dtype
from .whisper.fallback import generated_tokens, judged_decodings, scored
from .whisper.judge import THRESHOLDS, Decoding
from .whisper.probe import probe_speech
from .whisper.prompt import language_setting, transformers_prompt_ids, whisper_prefix
from .whisper.sampling import SampledDecoding
from .whisper.scoring import text_token_logprobs
from .whisper.seeding import clip_seed

DEFAULT_PROCESSOR = "openai/whisper-large-v3"
CLIP_SAMPLES = 30 * SAMPLE_RATE


class RemoteCodeStrategy(ASREngine):
    takes_keywords = True
    returns_logprobs = True

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

    def detect_language_probability(self, audio: np.ndarray) -> tuple[str | None, float | None]:
        assert self._model is not None, "detect_language() before load()"
        if not self.is_multilingual:
            return "en", 1.0
        probe = probe_speech(self._model, self._generation_config, self._features([audio]))
        return probe.languages[0], probe.language_probs[0]

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        assert self._model is not None, "transcribe_clips() before load()"
        if not clips:
            return []
        features = self._features(clips)
        prompt_ids = self._prompt_ids(options)
        probe = probe_speech(self._model, self._generation_config, features, prompt_ids)
        if self.is_multilingual and not options.language:
            languages = [detected or "en" for detected in probe.languages]
        else:
            languages = [options.language or "en"] * len(clips)
        config = self._request_config(options, languages)
        task = getattr(config, "task", None) or "transcribe"
        prefixes = [
            prompt_ids + whisper_prefix(config, language if self.is_multilingual else None, task)
            for language in languages
        ]
        # The model's own generate takes nothing but features: a prompted decoding is greedy through sample_decode.
        first = None if prompt_ids else lambda pending: self._greedy(features, probe.encoder_states, config, prefixes)
        decodings = judged_decodings(
            self._model, config, self._processor.tokenizer, probe.encoder_states, prefixes, probe.no_speech_probs,
            [clip_seed(clip, options) for clip in clips], THRESHOLDS.temperatures(options.temperature), first,
        )
        results = [
            self._transcription(decoding, len(clip) / SAMPLE_RATE, language)
            for clip, decoding, language in zip(clips, decodings, languages, strict=True)
        ]
        if options.logprobs:
            tokenizer = self._processor.tokenizer
            for index, (result, decoding) in enumerate(zip(results, decodings, strict=True)):
                if result.segments:
                    logprobs = text_token_logprobs(
                        self._model, config, tokenizer, probe.encoder_states[index], prefixes[index], decoding.tokens
                    )
                    result.segments = spread_over_segments(result.segments, logprobs)
        return results

    def _prompt_ids(self, options: TranscribeOptions) -> list[int]:
        """``<|startofprev|>`` and the keywords, then the end of the request's prompt (whisper.prompt), or nothing."""
        return transformers_prompt_ids(self._processor.tokenizer, options.keywords, options.initial_prompt)

    def _request_config(self, options: TranscribeOptions, languages: list[str]) -> GenerationConfig:
        config = copy.deepcopy(self._generation_config)
        # One decoding of the clip: generate would otherwise decode again from a transcript's last timestamp,
        # and append what it heard there (as <|0.00|> ...) to the clip's tokens. The pipeline continues a clip
        # that stops short (longform.decode_completely).
        config.force_unique_generate_call = True
        if self.is_multilingual:
            config.task = options.task
            config.language = language_setting(languages)
        return config

    def _greedy(
        self, features: torch.Tensor, encoder_states: torch.Tensor, config: GenerationConfig, prefixes: list[list[int]]
    ) -> list[SampledDecoding]:
        """The batch's greedy decoding by the model's own ``generate``, each clip's scored afterwards."""
        with self._generate_lock:  # the options travel on the model object itself
            self._model.generation_config = copy.deepcopy(config)  # generate may change what it is given
            with torch.inference_mode():
                sequences = self._model.generate(features).cpu()
        return [
            scored(self._model, config, states, prefix, generated_tokens(sequence, len(prefix), config.eos_token_id))
            for states, prefix, sequence in zip(encoder_states, prefixes, sequences, strict=True)
        ]

    def _transcription(self, decoding: Decoding, duration: float, language: str) -> Transcription:
        segments = [] if decoding.is_silence else self._clip_segments(decoding, duration)  # Whisper's no-speech rule
        return Transcription(
            text="".join(s.text for s in segments).strip(), language=language, duration=duration, segments=segments
        )

    def _clip_segments(self, decoding: Decoding, duration: float) -> list[Segment]:
        tokenizer = self._processor.tokenizer
        decoded = tokenizer.decode(decoding.tokens, skip_special_tokens=True, output_offsets=True)
        pieces = decoded.get("offsets") or [{"text": decoded["text"], "timestamp": (0.0, duration)}]
        segments = []
        for piece in pieces:
            if not piece["text"].strip():
                continue
            start, end = piece["timestamp"]
            start = min(float(start or 0.0), duration)
            end = min(duration, float(end)) if end is not None else duration
            segments.append(
                Segment(
                    id=len(segments),
                    start=start,
                    end=max(start, end),
                    text=piece["text"],
                    # Which attempt the text comes from.  Its scores are left out: batched float math changes their
                    # last digits, and a clip's result must not depend on the other clips of its batch.
                    temperature=decoding.temperature,
                )
            )
        return segments

    def unload(self) -> None:
        self._model = None
        self._processor = None
        self._generation_config = None
