"""Whisper's decoder at a temperature, token by token with plain forward passes, as OpenAI's Whisper samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .decoder import decoder_pass, whisper_token_rules


@dataclass(frozen=True)
class SampledDecoding:
    """One clip's decoding at one temperature, before Whisper's checks."""

    tokens: list[int]
    """Text and timestamp tokens, end-of-text excluded."""
    avg_logprob: float
    """Whisper's average log-probability: over the tokens and the end-of-text token (when the decoding
    reached it), each from the distribution after the token rules, at temperature 1."""


def sample_decode(
    model: Any,
    generation_config: Any,
    encoder_states: torch.Tensor,
    prefixes: Sequence[Sequence[int]],
    temperature: float,
    generators: Sequence[torch.Generator],
) -> list[SampledDecoding]:
    """Decode a batch of clips token by token with plain forward passes (a key-value cache, no
    ``generate``): Whisper's token rules (whisper_token_rules) applied, then the likeliest token at
    temperature 0 and otherwise a token drawn from the softmax at ``temperature`` over the whole vocabulary,
    as OpenAI's Whisper samples.  Each clip draws from its own generator, so its decoding does not depend on
    the other clips of the batch.  The prefixes must be of one length; decodings end at end-of-text or at
    generate's length limit: ``generation_config.max_length`` new tokens, at most the model's positions."""
    device = encoder_states.device
    eos = generation_config.eos_token_id
    begin = len(prefixes[0])
    positions = model.config.max_target_positions
    limit = min((generation_config.max_length or positions) + min(positions // 2 - 1, begin), positions)
    rules = whisper_token_rules(generation_config, begin, device)
    sequences = torch.tensor([list(p) for p in prefixes], dtype=torch.long, device=device)
    done = torch.zeros(len(prefixes), dtype=torch.bool, device=device)
    logprob_sums = torch.zeros(len(prefixes), dtype=torch.float64, device=device)
    step_ids, cache = sequences, None
    with torch.inference_mode():
        while sequences.shape[1] < limit and not bool(done.all()):
            output = decoder_pass(model, encoder_states, step_ids, past_key_values=cache, use_cache=True)
            cache = output.past_key_values
            scores = rules(sequences, output.logits[:, -1].float())
            chosen = _pick(scores, temperature, generators).masked_fill(done, eos)
            logprobs = scores.log_softmax(dim=-1).gather(-1, chosen[:, None])[:, 0]
            logprob_sums += logprobs.masked_fill(done, 0.0).double()
            done |= chosen == eos
            step_ids = chosen[:, None]
            sequences = torch.cat([sequences, step_ids], dim=1)
    return [_sampled(row[begin:].tolist(), float(total), eos) for row, total in zip(sequences, logprob_sums)]


def _pick(scores: torch.Tensor, temperature: float, generators: Sequence[torch.Generator]) -> torch.Tensor:
    if temperature <= 0:
        return scores.argmax(dim=-1)
    probs = (scores / temperature).softmax(dim=-1)
    return torch.cat([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generators, strict=True)])


def _sampled(tokens: list[int], logprob_sum: float, eos: int) -> SampledDecoding:
    if eos in tokens:  # the end-of-text token is scored, the padding after it is not
        end = tokens.index(eos)
        return SampledDecoding(tokens=tokens[:end], avg_logprob=logprob_sum / (end + 1))
    return SampledDecoding(tokens=tokens, avg_logprob=logprob_sum / max(len(tokens), 1))
