"""Whisper's first decoding step for a batch: each clip's no-speech probability and language, in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class SpeechProbe:
    """Whisper's first decoding step for each clip of a batch: what follows <|startoftranscript|>."""

    no_speech_probs: list[float]
    languages: list[str | None]
    """The most likely language token of each clip, as a code (``"pt"``); None for English-only models."""
    encoder_states: torch.Tensor
    """The encoder's output for the batch, for further decoder passes without encoding again."""
    language_probs: list[float | None] = field(default_factory=list)
    """The probability of each clip's language among the language tokens (as Whisper's ``detect_language``)."""


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
        output = model(input_features=features, decoder_input_ids=decoder_input_ids, use_cache=False)
    probs = output.logits[:, -1].float().softmax(dim=-1)
    # <|nospeech|> (<|nocaptions|> in older vocabularies) sits just before <|notimestamps|>, as transformers assumes.
    no_speech = probs[:, generation_config.no_timestamps_token_id - 1]
    lang_to_id: dict[str, int] | None = getattr(generation_config, "lang_to_id", None)
    if getattr(generation_config, "is_multilingual", True) and lang_to_id:
        tokens = list(lang_to_id)
        language_logits = output.logits[:, -1, [lang_to_id[t] for t in tokens]].float()
        best_probs, best = language_logits.softmax(dim=-1).max(dim=-1)
        languages: list[str | None] = [tokens[i].strip("<|>") for i in best.tolist()]
        language_probs: list[float | None] = best_probs.tolist()
    else:
        languages = [None] * features.shape[0]
        language_probs = [None] * features.shape[0]
    return SpeechProbe(
        no_speech_probs=no_speech.tolist(),
        languages=languages,
        encoder_states=output.encoder_last_hidden_state,
        language_probs=language_probs,
    )
