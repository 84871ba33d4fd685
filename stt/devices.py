"""Device selection and releasing accelerator memory."""

from __future__ import annotations

import gc
from functools import lru_cache
from typing import Literal

Device = Literal["cpu", "cuda"]


@lru_cache(maxsize=4)
def resolve_device(requested: str) -> Device:
    if requested == "cpu":
        return "cpu"
    cuda_available = _cuda_available()
    if requested == "cuda" and not cuda_available:
        raise RuntimeError("STT_DEVICE=cuda but no CUDA device is visible")
    return "cuda" if cuda_available else "cpu"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # CTranslate2-only installs
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    return torch.cuda.is_available()


def release_memory() -> None:
    """Return freed memory after a request or an unload: collect garbage, then empty the CUDA cache."""
    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()
