"""Forced scoring on real tiny.en weights converted to a transformers checkpoint."""

from __future__ import annotations

import pytest
import torch

from strategies.whisper.scoring import text_token_logprobs


def test_text_token_logprobs_are_generates_own_scores(hf_tiny_en_dir, jfk_audio):
    """The teacher-forced pass gives each text token the log-probability generate's scores gave it."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(hf_tiny_en_dir).eval()
    processor = WhisperProcessor.from_pretrained(hf_tiny_en_dir)
    features = processor.feature_extractor(jfk_audio, sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        generated = model.generate(
            features, return_timestamps=True, return_dict_in_generate=True, output_scores=True, num_beams=1
        )
        encoder_states = model.model.encoder(features).last_hidden_state[0]
    result = generated["segments"][0][0]["result"]
    steps = len(result["scores"])
    tokens = result["sequences"][-steps:]
    own = torch.stack(list(result["scores"])).float().log_softmax(-1)[torch.arange(steps), tokens]
    text = [i for i, t in enumerate(tokens.tolist()) if t < model.generation_config.eos_token_id]
    prefix = result["sequences"][:-steps].tolist()
    scored = text_token_logprobs(
        model, model.generation_config, processor.tokenizer, encoder_states, prefix, tokens[:-1].tolist()
    )
    assert len(text) >= 20
    assert [t.token for t in scored] == [processor.tokenizer.decode([tokens[i]]) for i in text]
    assert [t.logprob for t in scored] == pytest.approx([float(own[i]) for i in text], abs=5e-3)
