"""Loading a model: once, however many requests ask at once; with its bytes reserved first; with the start-up
check when it is on (a model that loads must decode one second of silence before it counts as loaded, so that a
CUDA library missing from the image fails the load instead of the first request); and, when it fails, a message
that says why and a pause before it is tried again."""

from __future__ import annotations

import logging
import time

import numpy as np

from core import metrics
from core.audio import SAMPLE_RATE
from core.devices import missing_library, release_memory
from core.errors import ModelUnavailableError
from core.types import TranscribeOptions
from strategies.base import ASREngine

from .limits import PoolLimits
from .memory_budget import MemoryBudget
from .slot import Slot

logger = logging.getLogger(__name__)


def ensure_loaded(slot: Slot, limits: PoolLimits, device: str, budget: MemoryBudget) -> None:
    """Load the leased slot's model unless it is loaded; raises ``ModelUnavailableError`` when it cannot be."""
    # A leased model that is loaded stays loaded: evictions only take unleased ones.
    if slot.engine.is_loaded:
        return
    with slot.load_lock:
        loaded_now = _load_locked(slot, limits, device, budget)
    if loaded_now:  # outside the lock: requests waiting for the model need not wait for this too
        release_memory(settle=True)


def _load_locked(slot: Slot, limits: PoolLimits, device: str, budget: MemoryBudget) -> bool:
    """Load the slot's model unless another request did; True when this call loaded it."""
    model_id = slot.spec.id
    if slot.engine.is_loaded:
        return False
    since_failure = time.monotonic() - slot.failed_at
    if slot.failure is not None and since_failure < limits.load_retry_after_s:
        retry_after_s = limits.load_retry_after_s - since_failure  # when the load will be tried again
        raise ModelUnavailableError(slot.failure.message, input="model", retry_after_s=retry_after_s)
    budget.reserve(slot, limits, device)
    started = time.perf_counter()
    try:
        slot.engine.load()
        if limits.self_check:
            _check_it_runs(slot, device)
    except Exception as exc:
        slot.engine.unload()
        budget.cancel_reservation(slot)
        release_memory(settle=True)
        logger.warning("loading %s failed: %s", model_id, exc)
        message = (
            f"The model {model_id!r} {exc}"
            if isinstance(exc, SelfCheckFailed)
            else f"The model {model_id!r} is registered but could not be loaded: {load_failure_reason(exc)}"
        )
        slot.failure = ModelUnavailableError(message, input="model", retry_after_s=limits.load_retry_after_s)
        slot.failed_at = time.monotonic()
        raise slot.failure from exc
    seconds = time.perf_counter() - started
    slot.failure = None
    if isinstance(slot.engine, ASREngine):
        slot.multilingual = slot.engine.is_multilingual
    measured = slot.engine.memory_bytes()
    budget.settle_reservation(slot, measured)
    metrics.MODEL_LOADS.labels(model=model_id).inc()
    metrics.MODEL_LOAD_SECONDS.labels(model=model_id).observe(seconds)
    metrics.RESIDENT_BYTES.labels(model=model_id).set(measured)
    logger.info("loaded %s in %.1fs (%.0f MiB)", model_id, seconds, measured / 2**20)
    return True


def _check_it_runs(slot: Slot, device: str) -> None:
    """Decode one second of silence through the model's batcher, as a request would."""
    engine = slot.engine
    if slot.batcher is None or not isinstance(engine, ASREngine):  # a diarizer: silence never reaches its GPU
        return
    language = slot.spec.language or (None if engine.is_multilingual else "en")
    try:
        slot.batcher.decode([np.zeros(SAMPLE_RATE, dtype=np.float32)], TranscribeOptions(language=language))
    except Exception as exc:
        raise SelfCheckFailed(self_check_failure(device, exc)) from exc


class SelfCheckFailed(RuntimeError):
    """A model loaded but could not decode a second of silence."""


def self_check_failure(device: str, exc: Exception) -> str:
    """Why a loaded model failed its check (to follow "The model 'id' "), naming the library it could not load."""
    lines = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {lines[0] if lines else ''}"[:200]
    library = missing_library(exc)
    if library is not None:
        return (
            f"loaded on {device} but cannot run: the library {library} cannot be loaded ({detail}); install it "
            "in the image or put its directory on LD_LIBRARY_PATH."
        )
    return f"loaded on {device} but failed to decode one second of silence ({detail})."


def load_failure_reason(exc: Exception) -> str:
    """One line saying why a load failed, explaining a missing Hugging Face cache entry."""
    text = str(exc).strip().splitlines()
    first_line = text[0] if text else type(exc).__name__
    if "offline" in str(exc).lower() or "cached files" in str(exc) or "LocalEntryNotFound" in type(exc).__name__:
        return f"its weights are not in the Hugging Face cache and the Hub cannot be reached ({first_line[:300]})"
    return first_line[:300]
