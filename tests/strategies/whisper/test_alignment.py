"""The attention switch for word alignment (a tiny random Whisper: no weights needed)."""

from __future__ import annotations

import pytest
import torch

from strategies.whisper.alignment import eager_attention


@pytest.fixture(scope="module")
def tiny_random_whisper():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(
        vocab_size=100, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=8,
        max_target_positions=16, num_mel_bins=8, pad_token_id=0, bos_token_id=1, eos_token_id=0,
        decoder_start_token_id=1,
    )
    return WhisperForConditionalGeneration._from_config(config, attn_implementation="sdpa").eval()


def test_eager_attention_is_switched_back_even_when_the_pass_fails(tiny_random_whisper):
    model = tiny_random_whisper
    with eager_attention(model):
        assert model.config._attn_implementation == "eager"
        output = model(input_features=torch.zeros(1, 8, 16), decoder_input_ids=torch.tensor([[1, 2]]),
                       output_attentions=True)
        assert output.cross_attentions[0].shape == (1, 2, 2, 8)
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(RuntimeError), eager_attention(model):
        raise RuntimeError("the alignment pass failed")
    assert {m.config._attn_implementation for m in model.modules() if hasattr(m, "config")} == {"sdpa"}
