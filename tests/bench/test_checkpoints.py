"""Tests for the real-weight Whisper checkpoint builders in ``checkpoints.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import (
    AutoModel,
    AutoProcessor,
    GenerationConfig,
    WhisperConfig,
    WhisperProcessor,
    pipeline,
)

from bench.checkpoints import (
    LITE_ASR_RANKS,
    LITE_ASR_RANKS_BASE,
    LOW_RANK_PROJECTIONS,
    ct2_tiny_en_dir,
    read_ct2_model,
    single_threaded_torch,
)

from bench.corpus import normalize
from tests.support.audio import JFK_PHRASE

# ``jfk_audio`` comes from conftest.py, as do the checkpoints built once per session.


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with single_threaded_torch():
        yield


@pytest.fixture(scope="module")
def hf_dir(hf_tiny_en_dir: Path) -> Path:
    return hf_tiny_en_dir


@pytest.fixture(scope="module")
def lite_dirs(lite_asr_dirs: tuple[Path, Path]) -> tuple[Path, Path]:
    return lite_asr_dirs


def test_hf_checkpoint_config(hf_dir: Path) -> None:
    config = WhisperConfig.from_pretrained(hf_dir)
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (384, 4, 4)
    assert (config.encoder_attention_heads, config.decoder_attention_heads) == (6, 6)
    assert (config.num_mel_bins, config.vocab_size) == (80, 51864)
    assert (config.max_source_positions, config.max_target_positions) == (1500, 448)

    ct2_config = json.loads((ct2_tiny_en_dir() / "config.json").read_text())
    gen = GenerationConfig.from_pretrained(hf_dir)
    assert (gen.eos_token_id, gen.pad_token_id, gen.bos_token_id) == (50256, 50256, 50256)
    assert (gen.decoder_start_token_id, gen.no_timestamps_token_id) == (50257, 50362)
    assert gen.is_multilingual is False
    assert gen.max_length == 448
    assert gen.alignment_heads == ct2_config["alignment_heads"]
    assert gen.suppress_tokens == ct2_config["suppress_ids"]
    assert gen.begin_suppress_tokens == ct2_config["suppress_ids_begin"]


def test_reader_dequantizes_int8_models(hf_dir: Path, tmp_path: Path) -> None:
    import ctranslate2

    int8_dir = tmp_path / "ct2-int8"
    ctranslate2.converters.TransformersConverter(str(hf_dir)).convert(str(int8_dir), quantization="int8")
    quantized = read_ct2_model(int8_dir / "model.bin").variables
    reference = read_ct2_model(ct2_tiny_en_dir() / "model.bin").variables
    for name in ("encoder/conv1/weight", "encoder/layer_0/self_attention/linear_0/weight", "decoder/embeddings/weight"):
        ref = reference[name]
        # Row-wise int8 quantization: error is at most half a step of that row's max / 127.
        step = np.abs(ref.reshape(ref.shape[0], -1)).max(axis=1) / 127
        error = np.abs(quantized[name] - ref).reshape(ref.shape[0], -1).max(axis=1)
        assert quantized[name].dtype == np.float32
        assert np.all(error <= 0.5 * step + 1e-6), name


def test_hf_tokenizer_special_and_timestamp_tokens(hf_dir: Path) -> None:
    tokenizer = WhisperProcessor.from_pretrained(hf_dir).tokenizer
    assert len(tokenizer) == 51864
    assert tokenizer.convert_tokens_to_ids(["<|0.00|>", "<|30.00|>"]) == [50363, 51863]

    text_ids = tokenizer.encode(" Hello world.", add_special_tokens=False)
    ids = [50257, 50362, *text_ids, 50363 + 50, 50256]
    assert tokenizer.decode(ids, skip_special_tokens=True) == " Hello world."
    assert tokenizer.decode(ids) == "<|startoftranscript|><|notimestamps|> Hello world.<|endoftext|>"
    assert "<|1.00|>" in tokenizer.decode(ids, decode_with_timestamps=True)


def test_lite_asr_checkpoint_layout(lite_dirs: tuple[Path, Path]) -> None:
    model_dir, processor_dir = lite_dirs
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "lite-whisper"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_lite_whisper.LiteWhisperConfig",
        "AutoModel": "modeling_lite_whisper.LiteWhisperForConditionalGeneration",
    }
    assert config["low_rank_config"] == [dict(r) for r in LITE_ASR_RANKS]
    assert (model_dir / "configuration_lite_whisper.py").is_file()
    assert (model_dir / "modeling_lite_whisper.py").is_file()
    assert not (model_dir / "generation_config.json").exists()
    assert (processor_dir / "generation_config.json").is_file()

    with safe_open(model_dir / "model.safetensors", framework="pt") as weights:
        keys = set(weights.keys())
        for i, ranks in enumerate(LITE_ASR_RANKS):
            for proj in LOW_RANK_PROJECTIONS:
                prefix = f"model.encoder.layers.{i}.{proj}"
                assert f"{prefix}.weight" not in keys
                rank = ranks[proj.rsplit(".", 1)[-1]]
                assert weights.get_slice(f"{prefix}.weight1").get_shape()[1] == rank
                assert weights.get_slice(f"{prefix}.weight2").get_shape()[0] == rank


def test_hf_pipeline_transcribes_english(hf_dir: Path, jfk_audio: np.ndarray) -> None:
    asr = pipeline("automatic-speech-recognition", model=str(hf_dir), dtype=torch.float32)
    result = asr({"raw": jfk_audio, "sampling_rate": 16000})
    assert JFK_PHRASE in normalize(result["text"]), result["text"]

    timed = asr({"raw": jfk_audio, "sampling_rate": 16000}, return_timestamps=True)
    assert JFK_PHRASE in normalize(timed["text"]), timed["text"]
    assert timed["chunks"] and all(0.0 <= c["timestamp"][0] <= 11.5 for c in timed["chunks"])


@pytest.fixture(scope="module")
def lite_model(lite_dirs: tuple[Path, Path]) -> torch.nn.Module:
    model_dir, processor_dir = lite_dirs
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True)
    # As with real LiteASR, generation settings come from the processor repo, not the model repo.
    model.generation_config = GenerationConfig.from_pretrained(processor_dir)
    return model.eval()


def test_lite_asr_transcribes_english(
    lite_model: torch.nn.Module, lite_dirs: tuple[Path, Path], jfk_audio: np.ndarray
) -> None:
    assert type(lite_model).__name__ == "LiteWhisperForConditionalGeneration"
    processor = AutoProcessor.from_pretrained(lite_dirs[1])
    input_features = processor(jfk_audio, sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        tokens = lite_model.generate(input_features)
    text = processor.batch_decode(tokens, skip_special_tokens=True)[0]
    assert JFK_PHRASE in normalize(text), text


def test_lite_asr_generate_rejects_model_kwargs(lite_model: torch.nn.Module) -> None:
    input_features = torch.zeros(1, 80, 3000)
    with pytest.raises(TypeError, match="forced_decoder_ids"):
        lite_model.generate(input_features, forced_decoder_ids=[[1, 50362]])
    with pytest.raises(TypeError, match="language"):
        lite_model.generate(input_features, language="en")


# --------------------------------------------------------------------------- multilingual Whisper base


def test_multilingual_checkpoint_config(hf_whisper_base_dir: Path, whisper_base_ct2_dir: Path) -> None:
    config = WhisperConfig.from_pretrained(hf_whisper_base_dir)
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (512, 6, 6)
    assert (config.encoder_attention_heads, config.num_mel_bins, config.vocab_size) == (8, 80, 51865)
    assert (config.decoder_start_token_id, config.eos_token_id, config.pad_token_id) == (50258, 50257, 50257)
    assert config.begin_suppress_tokens == [220, 50257]

    ct2_config = json.loads((whisper_base_ct2_dir / "config.json").read_text())
    gen = GenerationConfig.from_pretrained(hf_whisper_base_dir)
    assert gen.is_multilingual is True
    assert (gen.eos_token_id, gen.pad_token_id, gen.bos_token_id) == (50257, 50257, 50257)
    assert (gen.decoder_start_token_id, gen.no_timestamps_token_id, gen.prev_sot_token_id) == (50258, 50363, 50361)
    assert gen.task_to_id == {"transcribe": 50359, "translate": 50358}
    assert len(gen.lang_to_id) == 99 and sorted(gen.lang_to_id.values()) == ct2_config["lang_ids"]
    assert (gen.lang_to_id["<|en|>"], gen.lang_to_id["<|pt|>"], gen.lang_to_id["<|haw|>"]) == (50259, 50267, 50352)
    assert gen.forced_decoder_ids == [[1, None], [2, 50359]]  # as the openai/whisper-* repos carry it
    assert gen.suppress_tokens == ct2_config["suppress_ids"]
    assert gen.begin_suppress_tokens == ct2_config["suppress_ids_begin"] == [220, 50257]


def test_multilingual_tokenizer_special_and_timestamp_tokens(hf_whisper_base_dir: Path) -> None:
    tokenizer = WhisperProcessor.from_pretrained(hf_whisper_base_dir).tokenizer
    assert len(tokenizer) == 51865
    assert tokenizer.convert_tokens_to_ids(["<|pt|>", "<|nospeech|>", "<|0.00|>", "<|30.00|>"]) == [
        50267, 50362, 50364, 51864,
    ]
    assert {50258, 50267, 50359, 50363} <= set(tokenizer.all_special_ids)
    text_ids = tokenizer.encode(" Eu quero uma coxinha.", add_special_tokens=False)
    ids = [50258, 50267, 50359, 50364, *text_ids, 50364 + 100, 50257]
    assert tokenizer.decode(ids, skip_special_tokens=True) == " Eu quero uma coxinha."
    assert "<|2.00|>" in tokenizer.decode(ids, decode_with_timestamps=True)


def test_multilingual_weights_are_the_shipped_ones(hf_whisper_base_dir: Path, whisper_base_ct2_dir: Path) -> None:
    ct2 = read_ct2_model(whisper_base_ct2_dir / "model.bin").variables
    with safe_open(hf_whisper_base_dir / "model.safetensors", framework="np") as weights:
        for hf_name, ct2_name in [
            ("model.decoder.embed_tokens.weight", "decoder/embeddings/weight"),
            ("model.encoder.layers.5.fc2.weight", "encoder/layer_5/ffn/linear_1/weight"),
            ("model.decoder.layers.0.encoder_attn.out_proj.bias", "decoder/layer_0/attention/linear_2/bias"),
        ]:
            np.testing.assert_array_equal(weights.get_tensor(hf_name), ct2[ct2_name])


def test_multilingual_lite_asr_layout(lite_whisper_base_dirs: tuple[Path, Path]) -> None:
    model_dir, processor_dir = lite_whisper_base_dirs
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "lite-whisper" and config["vocab_size"] == 51865
    assert config["low_rank_config"] == [dict(r) for r in LITE_ASR_RANKS_BASE]
    assert not (model_dir / "generation_config.json").exists()
    gen = GenerationConfig.from_pretrained(processor_dir)
    assert gen.is_multilingual is True and gen.lang_to_id["<|pt|>"] == 50267
    with safe_open(model_dir / "model.safetensors", framework="pt") as weights:
        assert weights.get_slice("model.encoder.layers.5.fc1.weight1").get_shape() == [512, 448]
        assert weights.get_slice("model.encoder.layers.0.fc1.weight2").get_shape() == [512, 2048]
