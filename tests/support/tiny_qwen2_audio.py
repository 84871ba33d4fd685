"""A tiny, randomly initialised Qwen2-Audio (the real architecture: Whisper-style audio encoder, projector, Qwen2
decoder; the real processor and chat template), built and saved offline, with a byte-level BPE tokenizer of 256
byte tokens and the family's special tokens. What it says means nothing: it checks plumbing."""

from __future__ import annotations

from pathlib import Path

import torch

from core.audio import SAMPLE_RATE

QWEN2_AUDIO_SPECIALS = ("<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")


def build_tiny_qwen2_audio(directory: Path) -> Path:
    """A Qwen2-Audio checkpoint of about 40,000 random parameters, with its processor, saved in ``directory``.

    Its generation config suppresses the end tokens, so generation always runs to ``max_new_tokens``."""
    from tokenizers import pre_tokenizers
    from transformers import (
        GenerationConfig,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Tokenizer,
        WhisperFeatureExtractor,
    )

    vocab = {"<|endoftext|>": 0}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=[], eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN2_AUDIO_SPECIALS)})
    extractor = WhisperFeatureExtractor(feature_size=16, sampling_rate=SAMPLE_RATE, hop_length=160, chunk_length=30)
    processor = Qwen2AudioProcessor(feature_extractor=extractor, tokenizer=tokenizer)  # the family's chat template
    ends = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id]
    config = Qwen2AudioConfig(
        audio_config={"num_mel_bins": 16, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
                      "d_model": 16, "max_source_positions": 1500},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "max_position_embeddings": 4096, "eos_token_id": ends[0], "pad_token_id": ends[1],
                     "tie_word_embeddings": True},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=ends[0], pad_token_id=ends[1], suppress_tokens=ends)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
