"""Pieces shared by the torch-based engines: precision, Whisper decoding options and safeguards, module
sizes."""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.registry import ModelSpec
from core.types import Segment, Word

from .safeguards import LOG_PROB_THRESHOLD, temperature_schedule

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_SENTENCE_END = re.compile(r"[.!?…。？！]$")


def torch_dtype(spec: ModelSpec, device: str) -> torch.dtype:
    """fp16 on GPU and fp32 on CPU unless the registry entry pins a precision."""
    if spec.dtype == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    if spec.dtype not in _TORCH_DTYPES:
        raise ValueError(f"model {spec.id!r}: dtype {spec.dtype!r} is not available for Hugging Face engines")
    return _TORCH_DTYPES[spec.dtype]


# OpenAI Whisper's safeguards.  Temperature fallback: a decoding whose compression ratio or average log
# probability fails its threshold is decoded again at the next temperature.  No-speech: output whose
# no-speech probability is above NO_SPEECH_THRESHOLD while its average log-prob is below LOGPROB_THRESHOLD is
# dropped.  transformers' compression ratio is zlib on token ids, for which 1.35 plays OpenAI's 2.4 on text.
TEMPERATURES = tuple(temperature_schedule(0.0))
COMPRESSION_RATIO_THRESHOLD = 1.35
LOGPROB_THRESHOLD = LOG_PROB_THRESHOLD


def language_setting(languages: Sequence[str]) -> str | list[str]:
    """Whisper generate's ``language``: one code for the whole batch, or one per clip when they differ."""
    return languages[0] if len(set(languages)) == 1 else list(languages)


@dataclass(frozen=True)
class SpeechProbe:
    """Whisper's first decoding step for each clip of a batch: what follows <|startoftranscript|>."""

    no_speech_probs: list[float]
    languages: list[str | None]
    """The most likely language token of each clip, as a code (``"pt"``); None for English-only models."""


def probe_speech(
    model: Any, generation_config: Any, features: torch.Tensor, prompt_ids: Sequence[int] = ()
) -> SpeechProbe:
    """One forward pass (encoder, then one decoder step over ``prompt_ids + <|startoftranscript|>``) for a
    batch of log-mel features: each clip's no-speech probability, as Whisper computes it at the
    start-of-transcript position, and its most likely language among ``generation_config.lang_to_id``.

    A plain ``model(...)`` call, so it works on custom architectures whose ``generate`` takes no extra argument.
    """
    prefix = [*prompt_ids, generation_config.decoder_start_token_id]
    decoder_input_ids = torch.tensor([prefix] * features.shape[0], dtype=torch.long, device=features.device)
    with torch.inference_mode():
        logits = model(input_features=features, decoder_input_ids=decoder_input_ids, use_cache=False).logits[:, -1]
    probs = logits.float().softmax(dim=-1)
    # <|nospeech|> (<|nocaptions|> in older vocabularies) sits just before <|notimestamps|>, as transformers assumes.
    no_speech = probs[:, generation_config.no_timestamps_token_id - 1]
    lang_to_id: dict[str, int] | None = getattr(generation_config, "lang_to_id", None)
    if getattr(generation_config, "is_multilingual", True) and lang_to_id:
        tokens = list(lang_to_id)
        best = probs[:, [lang_to_id[t] for t in tokens]].argmax(dim=-1).tolist()
        languages: list[str | None] = [tokens[i].strip("<|>") for i in best]
    else:
        languages = [None] * features.shape[0]
    return SpeechProbe(no_speech_probs=no_speech.tolist(), languages=languages)


def whisper_prefix(generation_config: Any, language: str | None, task: str = "transcribe") -> list[int]:
    """The tokens Whisper's generate starts a timestamped decoding with: <|startoftranscript|>, then for
    multilingual models the language and the task."""
    prefix = [generation_config.decoder_start_token_id]
    if language is not None:
        prefix += [generation_config.lang_to_id[f"<|{language}|>"], generation_config.task_to_id[task]]
    return prefix


def forced_average_logprob(
    model: Any, generation_config: Any, features: torch.Tensor, prefix: Sequence[int], token_ids: Sequence[int]
) -> float:
    """Whisper's average log-probability of a decoding of one clip (end-of-text included), recomputed in
    one teacher-forced forward pass after ``prefix``.  Tokens Whisper never emits (``suppress_tokens``) are
    masked as in decoding; its timestamp rules are not replayed."""
    limit = model.config.max_target_positions
    tokens = list(token_ids)[: limit - len(prefix)]
    decoder_input_ids = torch.tensor([[*prefix, *tokens[:-1]]], dtype=torch.long, device=features.device)
    suppressed = list(getattr(generation_config, "suppress_tokens", None) or [])
    with torch.inference_mode():
        logits = model(input_features=features[None], decoder_input_ids=decoder_input_ids, use_cache=False).logits
        logits = logits[0, len(prefix) - 1 :].float()
        if suppressed:
            logits[:, suppressed] = float("-inf")
        logprobs = logits.log_softmax(dim=-1)
        chosen = torch.tensor(tokens, dtype=torch.long, device=logprobs.device)
        return float(logprobs.gather(-1, chosen[:, None]).sum()) / len(tokens)


def token_compression_ratio(token_ids: Sequence[int], vocab_size: int) -> float:
    """transformers' Whisper compression ratio: raw over zlib-compressed size of the token ids' bytes."""
    if not token_ids:
        return 0.0
    width = int(math.log2(vocab_size) / 8) + 1
    raw = b"".join(int(t).to_bytes(width, "little") for t in token_ids)
    return len(raw) / len(zlib.compress(raw))


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
