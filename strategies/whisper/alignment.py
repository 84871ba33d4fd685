"""Word timings for the torch-based Whisper engines: each token's time from the cross-attention of the alignment
heads, in a pass of its own over one clip's tokens."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from .decoder import decoder_pass


_ATTENTION_SWITCH = threading.Lock()
"""One eager block at a time: with several engine workers on one model, a block that ended must not switch the
model back to sdpa under another that still needs the attention weights."""


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """The model's attention switched to eager (the one implementation that returns attention weights) for
    the block, and back to what it was (sdpa) afterwards, even when the block raises."""
    with _ATTENTION_SWITCH:
        previous = model.config._attn_implementation
        model.set_attn_implementation("eager")
        try:
            yield
        finally:
            model.set_attn_implementation(previous)


def token_times(
    model: Any,
    alignment_heads: Any,
    encoder_states: torch.Tensor,
    decoder_input_ids: torch.Tensor,
    prefix_length: int,
    num_frames: int,
) -> torch.Tensor:
    """The time (s) of every decoder position of one clip's decoding, as transformers' Whisper generate
    computes it with ``return_token_timestamps`` (dynamic time warping of the alignment heads' cross-attention
    over the clip's ``num_frames`` feature frames), but from one teacher-forced pass over the clip's own tokens
    alone: ``decoder_input_ids`` is the prefix then the generated tokens, end-of-text excluded.  Inside a
    batch, generate's alignment also warps the rows of the padding after a clip's end-of-text, so a clip's
    times there depend on the length of the other clips' decodings."""
    from transformers.generation.utils import GenerateEncoderDecoderOutput

    with eager_attention(model), torch.inference_mode():
        output = decoder_pass(
            model, encoder_states[None], decoder_input_ids[None], output_attentions=True, use_cache=False
        )
    steps = GenerateEncoderDecoderOutput(sequences=decoder_input_ids[None], cross_attentions=(output.cross_attentions,))
    times = model._extract_token_timestamps(steps, alignment_heads, num_frames=num_frames, num_input_ids=prefix_length)
    return times[0].cpu()
