"""Custom Whisper-derived architectures loaded with ``trust_remote_code`` (LiteASR style).

Such models take nothing but ``generate(input_features)``: extra kwargs like ``forced_decoder_ids``
crash them. Language, task and timestamps are therefore set on the model's ``generation_config``,
which is replaced by the Whisper generation config of the processor repo.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, AutoProcessor, GenerationConfig

from stt.audio import SAMPLE_RATE
from stt.model_files import resolve_source
from stt.results import Segment, Transcription, TranscribeOptions

from .base import ASRStrategy
from .hf_common import language_and_task, module_bytes, torch_dtype

DEFAULT_PROCESSOR = "openai/whisper-large-v3"
WINDOW_SAMPLES = 30 * SAMPLE_RATE
GENERATE_BATCH_SIZE = 8


class RemoteCodeStrategy(ASRStrategy):
    _model: Any = None
    _processor: Any = None
    _generation_config: GenerationConfig | None = None

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

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcription:
        assert self._model is not None, "transcribe() before load()"
        config = copy.deepcopy(self._generation_config)
        for name, value in language_and_task(options, self.is_multilingual).items():
            setattr(config, name, value)
        self._model.generation_config = config

        windows = [audio[i : i + WINDOW_SAMPLES] for i in range(0, max(len(audio), 1), WINDOW_SAMPLES)]
        segments: list[Segment] = []
        for first in range(0, len(windows), GENERATE_BATCH_SIZE):
            batch = windows[first : first + GENERATE_BATCH_SIZE]
            for offset_index, token_ids in enumerate(self._generate(batch), start=first):
                offset = offset_index * WINDOW_SAMPLES / SAMPLE_RATE
                window_end = offset + len(windows[offset_index]) / SAMPLE_RATE
                segments.extend(self._window_segments(token_ids, offset, window_end, len(segments)))
        return Transcription(
            text="".join(s.text for s in segments).strip(),
            language=options.language or ("en" if not self.is_multilingual else None),
            duration=len(audio) / SAMPLE_RATE,
            segments=segments,
        )

    def _generate(self, windows: list[np.ndarray]) -> torch.Tensor:
        features = self._processor.feature_extractor(
            windows, sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features
        features = features.to(self.runtime.device, dtype=self._dtype)
        with torch.inference_mode():
            output = self._model.generate(features)
        return output.cpu()

    def _window_segments(self, token_ids: torch.Tensor, offset: float, window_end: float, first_id: int) -> list[Segment]:
        decoded = self._processor.tokenizer.decode(token_ids, skip_special_tokens=True, output_offsets=True)
        pieces = decoded.get("offsets") or [{"text": decoded["text"], "timestamp": (0.0, window_end - offset)}]
        segments = []
        for piece in pieces:
            if not piece["text"].strip():
                continue
            start, end = piece["timestamp"]
            start = offset + float(start or 0.0)
            end = min(window_end, offset + float(end)) if end is not None else window_end
            segments.append(Segment(id=first_id + len(segments), start=start, end=max(start, end), text=piece["text"]))
        return segments

    def unload(self) -> None:
        self._model = None
        self._processor = None
        self._generation_config = None
