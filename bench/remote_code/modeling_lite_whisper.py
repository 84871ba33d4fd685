"""LiteASR-style Whisper whose encoder linear projections are low-rank factor pairs (test fixture)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import WhisperForConditionalGeneration

from .configuration_lite_whisper import LiteWhisperConfig

_ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")
_FFN_PROJECTIONS = ("fc1", "fc2")
_GENERATE_KWARGS = frozenset({"generation_config", "attention_mask"})


class LowRankLinear(nn.Module):
    """Drop-in for ``nn.Linear`` computing ``x @ weight1 @ weight2 + bias``."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.rank = rank
        self.weight1 = nn.Parameter(torch.empty(in_features, rank))
        self.weight2 = nn.Parameter(torch.empty(rank, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        out = hidden_states @ self.weight1 @ self.weight2
        return out if self.bias is None else out + self.bias


def _low_rank(dense: nn.Linear, rank: int) -> LowRankLinear:
    return LowRankLinear(dense.in_features, dense.out_features, rank, bias=dense.bias is not None)


class LiteWhisperForConditionalGeneration(WhisperForConditionalGeneration):
    """Whisper with factorised encoder projections; ``generate`` accepts no extra model kwargs."""

    config_class = LiteWhisperConfig

    def __init__(self, config: LiteWhisperConfig) -> None:
        super().__init__(config)
        for layer, ranks in zip(self.model.encoder.layers, config.low_rank_config, strict=True):
            for name in _ATTENTION_PROJECTIONS:
                setattr(layer.self_attn, name, _low_rank(getattr(layer.self_attn, name), ranks[name]))
            for name in _FFN_PROJECTIONS:
                setattr(layer, name, _low_rank(getattr(layer, name), ranks[name]))
        self.post_init()

    def generate(self, input_features: torch.Tensor | None = None, **kwargs: Any) -> Any:
        # Like the published LiteASR checkpoints: language/task/forced ids must come from the
        # generation config, not from keyword arguments.
        unexpected = sorted(set(kwargs) - _GENERATE_KWARGS)
        if unexpected:
            raise TypeError(f"generate() got unexpected keyword argument(s): {', '.join(unexpected)}")
        return super().generate(input_features, **kwargs)
