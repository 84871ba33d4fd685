"""Device selection and releasing accelerator memory."""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable
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
    # CTranslate2 (always installed) answers without importing torch, which a CTranslate2-only deployment
    # never needs: torch's OpenMP runtime would then compete with CTranslate2's for the same cores.
    try:
        import ctranslate2
    except ImportError:
        import torch

        return torch.cuda.is_available()
    return ctranslate2.get_cuda_device_count() > 0


def release_memory(settle: bool = False) -> None:
    """Return freed memory after a request or an unload: collect garbage, hand the C heap's free pages
    back to the OS, then empty the CUDA cache.

    ``settle`` (at startup and after an unload): collect everything, then freeze the survivors, which are
    long-lived (modules, resident models), so that per-request collections skip them. A full collection
    over torch's and transformers' objects takes about 0.1 s; skipping them makes it a few milliseconds.
    """
    if settle:
        gc.unfreeze()  # what an unloaded model left behind may have been frozen with it
    gc.collect()
    if settle:
        gc.freeze()
    _trim_c_heap()
    torch = sys.modules.get("torch")  # not imported: no torch model was ever loaded, nothing to release
    if torch is None:
        return
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _trim_c_heap() -> None:
    # Audio buffers of varying sizes fragment glibc's heap; without a trim, freed pages stay resident.
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def memory_budget_bytes(budget: float, device: Device) -> int:
    """A budget given as a fraction (<= 1) of the device's memory, or as bytes (> 1)."""
    if budget > 1:
        return int(budget)
    if device == "cuda":
        import torch

        total = torch.cuda.get_device_properties(0).total_memory
    else:
        import psutil

        total = psutil.virtual_memory().total
    return int(budget * total)
