"""Device selection, a worker's GPU, GPU memory, and releasing memory."""

from __future__ import annotations

import ctypes
import gc
import os
import re
import sys
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any, Literal

Device = Literal["cpu", "cuda"]

CUDA_SHORT_FRACTION = 0.1
"""Free GPU memory below this share of the device's counts as pressure: the CUDA cache is emptied at once."""


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


# ---------------------------------------------------------------------- one worker per GPU


def gpu_for_worker(worker_index: int, gpus: Sequence[str]) -> str:
    """The GPU (an entry of CUDA_VISIBLE_DEVICES) of BentoML worker ``worker_index`` (1-based): workers take
    the visible GPUs in turn."""
    return gpus[(worker_index - 1) % len(gpus)]


def pin_worker_to_gpu(
    worker_index: int | None, requested_device: str, environ: MutableMapping[str, str] = os.environ
) -> str | None:
    """Narrow CUDA_VISIBLE_DEVICES to this worker's GPU. Call it before anything in the process initialises
    CUDA, which reads the variable once. Returns the GPU chosen; None when there is nothing to choose: on CPU,
    outside a worker (``bentoml build``, the server's supervisor), or with fewer than two GPUs visible."""
    if requested_device == "cpu" or not worker_index:
        return None
    gpus = visible_gpus(environ)
    if len(gpus) < 2:
        return None
    chosen = gpu_for_worker(worker_index, gpus)
    environ["CUDA_VISIBLE_DEVICES"] = chosen
    # Number GPUs as NVML does (by PCI bus), so that the index means the same GPU to CUDA and to NVML.
    environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    return chosen


def visible_gpus(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """The GPUs CUDA would show this process, as CUDA_VISIBLE_DEVICES entries (indices or UUIDs); read from the
    variable, or counted with NVML when it is unset (NVML, unlike CUDA, can be asked without being initialised)."""
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return [str(index) for index in range(_nvml_device_count())]
    gpus = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry or entry.startswith("-"):  # CUDA ignores an invalid entry and every one after it
            break
        gpus.append(entry)
    return gpus


def _nvml_device_count() -> int:
    with _nvml() as nvml:
        return nvml.nvmlDeviceGetCount() if nvml is not None else 0


# ---------------------------------------------------------------------- GPU memory


def cuda_memory_info() -> tuple[int, int] | None:
    """(free, total) bytes of this process's GPU, device-wide: what every process, CTranslate2 and torch's
    cache hold is already taken out. None when it cannot be told."""
    cuda = _torch_cuda()
    if cuda is not None:
        free, total = cuda.mem_get_info()
        return int(free), int(total)
    # torch is not in use (a CTranslate2-only deployment): ask NVML rather than give torch a CUDA context.
    gpus = visible_gpus()
    return _nvml_memory_info(gpus[0]) if gpus else None


def _nvml_memory_info(gpu: str) -> tuple[int, int] | None:
    with _nvml() as nvml:
        if nvml is None:
            return None
        try:
            if gpu.isdigit():
                handle = nvml.nvmlDeviceGetHandleByIndex(int(gpu))
            elif gpu.startswith("GPU-"):
                handle = nvml.nvmlDeviceGetHandleByUUID(gpu)
            else:  # a MIG instance: NVML reports its parent's memory
                return None
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        except nvml.NVMLError:
            return None
        return int(memory.free), int(memory.total)


@contextmanager
def _nvml() -> Iterator[Any]:
    """NVML, initialised for the ``with`` block; None when there is none (no driver, or not installed)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        yield None
        return
    try:
        yield pynvml
    finally:
        with suppress(Exception):
            pynvml.nvmlShutdown()


def cuda_memory_is_short(fraction: float = CUDA_SHORT_FRACTION) -> bool:
    """torch has CUDA in use and the GPU has less than ``fraction`` of its memory free."""
    cuda = _torch_cuda()
    if cuda is None:
        return False
    free, total = cuda.mem_get_info()
    return free < fraction * total


def empty_cuda_cache() -> None:
    """Hand the blocks torch's CUDA allocator caches back to the device. It synchronises the whole GPU: call it
    when no model is running, under memory pressure, or after an unload."""
    cuda = _torch_cuda()
    if cuda is not None:
        cuda.empty_cache()
        cuda.ipc_collect()


def _torch_cuda() -> Any:
    """``torch.cuda`` when torch is imported and has initialised CUDA; None otherwise (nothing is cached)."""
    torch = sys.modules.get("torch")  # not imported: no torch model was ever loaded
    if torch is None:
        return None
    cuda = torch.cuda
    return cuda if cuda.is_available() and cuda.is_initialized() else None


def missing_library(exc: BaseException) -> str | None:
    """The shared library (``libcublas.so.12``...) an error, or one of its causes, says could not be loaded."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        if any(phrase in text for phrase in _CANNOT_LOAD):
            found = _SHARED_LIBRARY.search(text)
            if found:
                return found.group(0)
        current = current.__cause__ or current.__context__
    return None


# The dynamic loader's words (OSError from ctypes or torch), and CTranslate2's ("Library libcublas.so.12 is not
# found or cannot be loaded").
_CANNOT_LOAD = ("cannot open shared object file", "cannot be loaded", "is not found")
_SHARED_LIBRARY = re.compile(r"\blib[\w+-]+(?:\.[\w+-]+)*?\.so(?:\.\d+)*")


# ---------------------------------------------------------------------- releasing memory


def release_memory(settle: bool = False) -> None:
    """Return freed memory after a request or an unload: collect garbage and hand the C heap's free pages back
    to the OS. The CUDA cache is emptied only after an unload (``settle``) or when GPU memory runs short: per
    request it would synchronise the whole GPU under load; the pool empties it when no model is in use.

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
    if settle or cuda_memory_is_short():
        empty_cuda_cache()


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
        info = cuda_memory_info()
        if info is not None:
            total = info[1]
        else:
            import torch

            total = torch.cuda.get_device_properties(0).total_memory
    else:
        import psutil

        total = psutil.virtual_memory().total
    return int(budget * total)
