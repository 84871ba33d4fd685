"""What every torch-based engine (Whisper, speech-LLM, diarizers) shares: the precision weights load in, and the
memory a loaded module holds."""

from __future__ import annotations

import torch

from core.registry import ModelSpec

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def torch_dtype(
    spec: ModelSpec, device: str, *, bfloat16_on_gpu: bool = False, engine: str = "Hugging Face engines"
) -> torch.dtype:
    """fp16 on GPU (bfloat16 with ``bfloat16_on_gpu``, on a GPU that has it) and fp32 on CPU unless the registry
    entry pins a precision; ``engine`` names who refuses a precision torch does not have."""
    if spec.dtype == "auto":
        if device != "cuda":
            return torch.float32
        return torch.bfloat16 if bfloat16_on_gpu and torch.cuda.is_bf16_supported() else torch.float16
    if spec.dtype not in _TORCH_DTYPES:
        raise ValueError(f"model {spec.id!r}: dtype {spec.dtype!r} is not available for {engine}")
    return _TORCH_DTYPES[spec.dtype]


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes held by a module's parameters and buffers."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)
