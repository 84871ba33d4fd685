"""Whisper's temperature fallback on a transformers Whisper decoder, for the engines that run it themselves
(transformers, remote_code): the first decoding by the model's own ``generate``, scored; the clips the judge
fails decoded again by ``sample_decode``, each clip drawing from its own seeded generator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .judge import Decoding, best_of_failed, decode_with_fallback
from .sampling import SampledDecoding, sample_decode
from .scoring import forced_average_logprob
from .seeding import temperature_seed

FirstDecoding = Callable[[list[int]], list[SampledDecoding]]
"""The first decoding (temperature 0) of the clips at the given indices of the batch."""


def judged_decodings(
    model: Any,
    config: Any,
    tokenizer: Any,
    encoder_states: torch.Tensor,
    prefixes: Sequence[Sequence[int]],
    no_speech_probs: Sequence[float],
    seeds: Sequence[int],
    temperatures: Sequence[float],
    first: FirstDecoding | None,
) -> list[Decoding]:
    """Each clip's decoding as the judge keeps it (``decode_with_fallback``): at temperature 0 by ``first`` (None:
    greedy through ``sample_decode``), above it sampled, each clip from a generator seeded with its seed and the
    temperature (``temperature_seed``), so that a clip's draws depend neither on the other clips of the batch
    nor on how long they ran. ``prefixes`` are the decoder prefixes (prompt and start tokens), of one length."""
    device = encoder_states.device

    def decode(pending: list[int], temperature: float) -> list[Decoding]:
        if temperature == 0 and first is not None:
            decoded = first(pending)
        else:
            generators = [torch.Generator(device).manual_seed(temperature_seed(seeds[i], temperature)) for i in pending]
            states = encoder_states[pending]
            decoded = sample_decode(model, config, states, [prefixes[i] for i in pending], temperature, generators)
        return [
            judged(tokenizer, config, sampled, no_speech_probs[i], temperature)
            for i, sampled in zip(pending, decoded, strict=True)
        ]

    return decode_with_fallback(len(prefixes), temperatures, decode, best_of_failed)


def scored(
    model: Any, config: Any, encoder_states: torch.Tensor, prefix: Sequence[int], tokens: Sequence[int]
) -> SampledDecoding:
    """A decoding made elsewhere (by ``generate``) with Whisper's average log-probability: one teacher-forced pass
    over its tokens and the end-of-text token, which Whisper counts too."""
    logprob = forced_average_logprob(model, config, encoder_states, prefix, [*tokens, config.eos_token_id])
    return SampledDecoding(tokens=list(tokens), avg_logprob=logprob)


def generated_tokens(sequence: torch.Tensor, prefix_length: int, eos: int) -> list[int]:
    """A clip's tokens in ``generate``'s output row (the prefix, the tokens, end-of-text, padding): the text and
    timestamp tokens between the prefix and end-of-text."""
    tokens = sequence[prefix_length:].tolist()
    return tokens[: tokens.index(eos)] if eos in tokens else tokens


def judged(tokenizer: Any, config: Any, sampled: SampledDecoding, no_speech_prob: float, temperature: float) -> Decoding:
    """The decoding as the judge sees it; its compression ratio is OpenAI's, on the text: the tokens whose ids come
    before end-of-text's (no timestamp or other special token), as the ctranslate2 engine measures it."""
    text = tokenizer.decode([t for t in sampled.tokens if t < config.eos_token_id]).strip()
    return Decoding(
        tokens=sampled.tokens,
        text=text,
        avg_logprob=sampled.avg_logprob,
        no_speech_prob=no_speech_prob,
        temperature=temperature,
    )
