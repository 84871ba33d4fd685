"""Pieces shared by the torch-based engines: precision, Whisper decoding options, module sizes."""

from __future__ import annotations

import re

import torch

from core.registry import ModelSpec
from core.types import Segment, TranscribeOptions, Word

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_SENTENCE_END = re.compile(r"[.!?…。？！]$")


def torch_dtype(spec: ModelSpec, device: str) -> torch.dtype:
    """fp16 on GPU and fp32 on CPU unless the registry entry pins a precision."""
    if spec.dtype == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    if spec.dtype not in _TORCH_DTYPES:
        raise ValueError(f"model {spec.id!r}: dtype {spec.dtype!r} is not available for Hugging Face engines")
    return _TORCH_DTYPES[spec.dtype]


def language_and_task(options: TranscribeOptions, multilingual: bool) -> dict[str, str]:
    """Whisper's ``language``/``task`` settings; English-only checkpoints accept neither."""
    if not multilingual:
        return {}
    settings = {"task": options.task}
    if options.language:
        settings["language"] = options.language
    return settings


def segments_from_words(words: list[Word], max_segment_s: float = 30.0) -> list[Segment]:
    """Group timed words into sentence-like segments (at end punctuation or every ``max_segment_s``)."""
    segments: list[Segment] = []
    current: list[Word] = []
    for word in words:
        current.append(word)
        too_long = current[-1].end - current[0].start >= max_segment_s
        if _SENTENCE_END.search(word.word.strip()) or too_long:
            segments.append(_segment_of(len(segments), current))
            current = []
    if current:
        segments.append(_segment_of(len(segments), current))
    return segments


def _segment_of(index: int, words: list[Word]) -> Segment:
    return Segment(
        id=index,
        start=words[0].start,
        end=words[-1].end,
        text="".join(w.word for w in words),
        words=list(words),
    )


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes held by a module's parameters and buffers."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)
