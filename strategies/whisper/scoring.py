"""The log-probabilities of a decoding, recomputed in one teacher-forced decoder pass over its tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from core.types import TokenLogprob

from ..token_logprobs import token_logprobs
from .decoder import decoder_pass, whisper_token_rules


def forced_token_logprobs(
    model: Any, generation_config: Any, encoder_states: torch.Tensor, prefix: Sequence[int], token_ids: Sequence[int]
) -> list[float]:
    """The log-probability of each token of a decoding of one clip, recomputed in one teacher-forced forward
    pass after ``prefix`` over the clip's encoder states: the log-probabilities generate's scores give, after
    Whisper's token rules (whisper_token_rules), at temperature 1. Tokens past the model's positions are left out."""
    limit = model.config.max_target_positions
    tokens = list(token_ids)[: limit - len(prefix)]
    if not tokens:
        return []
    sequence = torch.tensor([[*prefix, *tokens]], dtype=torch.long, device=encoder_states.device)
    rules = whisper_token_rules(generation_config, len(prefix), encoder_states.device)
    with torch.inference_mode():
        logits = decoder_pass(model, encoder_states[None], sequence[:, :-1], use_cache=False).logits
        logits = logits[0, len(prefix) - 1 :]
        logprobs = [
            rules(sequence[:, : len(prefix) + step], logits[step : step + 1].float()).log_softmax(dim=-1)[0, token]
            for step, token in enumerate(tokens)
        ]
    return torch.stack(logprobs).tolist()


def forced_average_logprob(
    model: Any, generation_config: Any, encoder_states: torch.Tensor, prefix: Sequence[int], token_ids: Sequence[int]
) -> float:
    """Whisper's average log-probability of a decoding of one clip (end-of-text included in ``token_ids``), from
    forced_token_logprobs."""
    logprobs = forced_token_logprobs(model, generation_config, encoder_states, prefix, token_ids)
    return sum(logprobs) / len(logprobs)


def text_token_logprobs(
    model: Any,
    generation_config: Any,
    tokenizer: Any,
    encoder_states: torch.Tensor,
    prefix: Sequence[int],
    token_ids: Sequence[int],
) -> list[TokenLogprob]:
    """The text tokens of a clip's decoding (``token_ids``: its text and timestamp tokens after ``prefix``) with
    their log-probabilities (forced_token_logprobs); timestamp and other special tokens are scored in context
    but not returned."""
    logprobs = forced_token_logprobs(model, generation_config, encoder_states, prefix, token_ids)
    special = set(tokenizer.all_special_ids)
    first_timestamp = generation_config.no_timestamps_token_id + 1
    kept = [(t, lp) for t, lp in zip(token_ids, logprobs) if t < first_timestamp and t not in special]
    return token_logprobs([t for t, _ in kept], [lp for _, lp in kept], tokenizer.convert_ids_to_tokens)
