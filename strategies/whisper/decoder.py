"""Whisper's decoder run by hand, as transformers' ``generate`` runs it: one forward pass on encoder states
computed before, and the logits rules generate applies at each step."""

from __future__ import annotations

from typing import Any

import torch


def decoder_pass(model: Any, encoder_states: torch.Tensor, decoder_input_ids: torch.Tensor, **kwargs: Any) -> Any:
    """A plain forward pass of the model on encoder states computed before: the decoder alone runs."""
    from transformers.modeling_outputs import BaseModelOutput

    encoder_outputs = BaseModelOutput(last_hidden_state=encoder_states)
    return model(encoder_outputs=encoder_outputs, decoder_input_ids=decoder_input_ids, **kwargs)


def whisper_token_rules(generation_config: Any, begin_index: int, device: torch.device | str) -> Any:
    """Whisper generate's logits processors, in its order, for a decoding whose first ``begin_index``
    tokens are its prefix: ``begin_suppress_tokens`` at the first step, ``suppress_tokens`` always, and the
    timestamp rules when ``return_timestamps`` is set."""
    # Imported here: importing this module needs no transformers until a decoding runs.
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        SuppressTokensAtBeginLogitsProcessor,
        SuppressTokensLogitsProcessor,
        WhisperTimeStampLogitsProcessor,
    )

    rules = LogitsProcessorList()
    if generation_config.begin_suppress_tokens:
        rules.append(
            SuppressTokensAtBeginLogitsProcessor(generation_config.begin_suppress_tokens, begin_index, device=device)
        )
    if generation_config.suppress_tokens:
        rules.append(SuppressTokensLogitsProcessor(generation_config.suppress_tokens, device=device))
    if generation_config.return_timestamps:
        rules.append(WhisperTimeStampLogitsProcessor(generation_config, begin_index=begin_index))
    return rules
