"""The pieces the Hugging Face engines share: Whisper's safeguards on token ids, and the attention switch for
word alignment (a tiny random Whisper: no weights needed)."""

from __future__ import annotations

import pytest
import torch

from strategies.hf_common import TokenDecoding, best_of_failed_decodings, eager_attention, token_compression_ratio

VOCAB = 51864
VARIED = list(range(400, 440))
LOOP = [400, 401] * 60


def _decoding(tokens: list[int] = VARIED, avg_logprob: float = -0.3, no_speech_prob: float = 0.01,
              temperature: float = 0.0) -> TokenDecoding:
    return TokenDecoding(tokens=tokens, avg_logprob=avg_logprob, compression_ratio=token_compression_ratio(tokens, VOCAB),
                         no_speech_prob=no_speech_prob, temperature=temperature)


def test_a_likely_varied_decoding_is_kept():
    decoding = _decoding()
    assert not decoding.needs_fallback and not decoding.is_silence


def test_a_repetition_loop_or_unlikely_tokens_are_decoded_again():
    assert _decoding(LOOP).compression_ratio > 1.35 and _decoding(LOOP).needs_fallback
    assert _decoding(avg_logprob=-1.2).needs_fallback


def test_where_the_model_hears_no_speech_unlikely_tokens_or_a_loop_are_silence_not_a_retry():
    for silence in (_decoding(avg_logprob=-1.2, no_speech_prob=0.9), _decoding(LOOP, no_speech_prob=0.9)):
        assert silence.is_silence and not silence.needs_fallback
    assert not _decoding(no_speech_prob=0.9).is_silence, "likely varied text is kept"


def test_when_every_temperature_fails_the_likeliest_attempt_that_does_not_loop_is_kept():
    attempts = [
        _decoding(avg_logprob=-1.5, temperature=0.0),
        _decoding(LOOP, avg_logprob=-0.2, temperature=0.2),
        _decoding(avg_logprob=-1.1, temperature=0.4),
        _decoding(avg_logprob=-1.3, temperature=0.6),
    ]
    assert best_of_failed_decodings(attempts).temperature == 0.4
    loops = [_decoding(LOOP, avg_logprob=-0.9, temperature=0.0), _decoding(LOOP, avg_logprob=-0.5, temperature=0.2)]
    assert best_of_failed_decodings(loops).temperature == 0.2, "all loop: the likeliest"


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


def test_text_token_logprobs_are_generates_own_scores(hf_tiny_en_dir, jfk_audio):
    """The teacher-forced pass gives each text token the log-probability generate's scores gave it."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from strategies.hf_common import text_token_logprobs

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
