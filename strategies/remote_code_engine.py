"""Custom Whisper-derived architectures loaded with ``trust_remote_code`` (LiteASR style).

Such models take nothing but ``generate(input_features)``: extra kwargs like ``forced_decoder_ids``
crash them. Language, task and timestamps are therefore set on the model's ``generation_config``,
which is replaced by the Whisper generation config of the processor repo. A batch of clips is one
``generate`` call on their stacked ``input_features``.
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
from .hf_common import language_and_task, module_bytes, torch_dtype

DEFAULT_PROCESSOR = "openai/whisper-large-v3"


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

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        assert self._model is not None, "transcribe_clips() before load()"
        if not clips:
            return []
        config = copy.deepcopy(self._generation_config)
        for name, value in language_and_task(options, self.is_multilingual).items():
            setattr(config, name, value)
        with self._generate_lock:  # the options travel on the model object itself
            self._model.generation_config = config
            token_batch = self._generate(clips)
        results = []
        for clip, token_ids in zip(clips, token_batch):
            duration = len(clip) / SAMPLE_RATE
            segments = self._clip_segments(token_ids, duration)
            results.append(
                Transcription(
                    text="".join(s.text for s in segments).strip(),
                    language=options.language or ("en" if not self.is_multilingual else None),
                    duration=duration,
                    segments=segments,
                )
            )
        return results

    def _generate(self, clips: Sequence[np.ndarray]) -> torch.Tensor:
        features = self._processor.feature_extractor(
            list(clips), sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features
        features = features.to(self.runtime.device, dtype=self._dtype)
        with torch.inference_mode():
            output = self._model.generate(features)
        return output.cpu()

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
