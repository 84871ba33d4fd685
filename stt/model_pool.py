"""Resident models under a memory budget, shared safely by concurrent requests.

- Models load on first use (or at startup when preloaded), once, however many requests ask at once.
- Several models stay resident while they fit the budget; when a new one would not fit, the least
  recently used idle model is unloaded. Preloaded models are pinned unless the operator says otherwise.
- A request holds a lease on its model from admission to the end of inference: a leased model is
  never unloaded. Each model decodes through its own batcher (``stt.batching``): concurrent requests'
  clips share batches, on the model's own inference threads. Requests beyond what the batches and the
  queue hold are refused with 429 instead of piling up.
- Models idle longer than the TTL are unloaded by a background reaper.

Evictions and unloads happen under the pool lock and only touch unleased models; loads run outside it,
with the bytes they will take reserved against the budget so that concurrent loads do not overshoot it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from strategies.base import ASRStrategy, RuntimeContext
from strategies.factory import create_strategy

from . import metrics
from .batching import ClipBatcher
from .devices import release_memory
from .errors import ModelUnavailableError, RateLimitedError
from .longform import ClipDecoder
from .registry import ModelRegistry, ModelSpec
from .results import Transcription, TranscribeOptions

logger = logging.getLogger(__name__)
StrategyFactory = Callable[[ModelSpec, RuntimeContext], ASRStrategy]


@dataclass(frozen=True)
class PoolLimits:
    memory_budget_bytes: int | None = None
    """None: no budget, every model stays resident."""
    idle_ttl_s: float = -1
    """Unload models idle this long; negative: never."""
    max_inflight_per_model: int = 1
    """Batches one model decodes at once."""
    max_queued_per_model: int = 32
    """Requests that may wait beyond those the running batches hold."""
    max_batch_size: int = 8
    max_batch_wait_s: float = 0.05
    pin_preloaded: bool = True
    load_retry_after_s: float = 30.0


@dataclass
class _Slot:
    strategy: ASRStrategy
    batcher: ClipBatcher
    """Runs every decode on the model's own threads: stable threads keep per-thread allocator caches from piling up."""
    load_lock: threading.Lock = field(default_factory=threading.Lock)
    leases: int = 0
    last_used: float = field(default_factory=time.monotonic)
    pinned: bool = False
    resident_bytes: int = 0
    reserved_bytes: int = 0
    failure: ModelUnavailableError | None = None
    failed_at: float = 0.0


@dataclass(frozen=True)
class ModelState:
    id: str
    loaded: bool
    pinned: bool
    leases: int
    resident_bytes: int


class ModelPool:
    def __init__(
        self,
        registry: ModelRegistry,
        runtime: RuntimeContext,
        factory: StrategyFactory = create_strategy,
        limits: PoolLimits = PoolLimits(),
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.limits = limits
        self._factory = factory
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self.preloaded = threading.Event()
        self._stop = threading.Event()
        if limits.idle_ttl_s >= 0:
            threading.Thread(target=self._reap_idle_forever, name="model-reaper", daemon=True).start()

    # ------------------------------------------------------------------ public

    def preload(self, model_ids: Iterable[str]) -> None:
        """Load each model now; a failure is logged and that model answers 503 until it loads."""
        try:
            for model_id in model_ids:
                try:
                    self.load(model_id, pin=self.limits.pin_preloaded)
                except ModelUnavailableError as exc:
                    logger.error("preloading %s failed: %s", model_id, exc.message)
        finally:
            self.preloaded.set()

    def load(self, model_id: str, pin: bool = False) -> None:
        with self.use(model_id) as _:
            if pin:
                with self._lock:
                    self._slots[model_id].pinned = True

    @contextmanager
    def use(self, model_id: str) -> Iterator[ASRStrategy]:
        """Lease ``model_id``, loading it if needed. Decode through ``decoder(model_id)`` while it is held."""
        slot = self._lease(self.registry.get(model_id))
        try:
            self._ensure_loaded(slot)
            yield slot.strategy
        finally:
            with self._lock:
                slot.leases -= 1
                slot.last_used = time.monotonic()

    def decoder(self, model_id: str) -> ClipDecoder:
        """The model's batched clip decoder; call it only while holding a lease from ``use``."""
        return self._slots[model_id].batcher.decode

    def unload(self, model_id: str, reason: str = "admin") -> bool:
        """Unload an idle model now (pinned or not). False when it is not loaded or is in use."""
        self.registry.get(model_id)
        with self._lock:
            slot = self._slots.get(model_id)
            if slot is None or not slot.strategy.is_loaded or slot.leases:
                return False
            self._unload_locked(model_id, slot, reason)
        release_memory(settle=True)
        return True

    def states(self) -> list[ModelState]:
        with self._lock:
            return [
                ModelState(mid, s.strategy.is_loaded, s.pinned, s.leases, s.resident_bytes)
                for mid, s in self._slots.items()
            ]

    def loaded_ids(self) -> list[str]:
        return [state.id for state in self.states() if state.loaded]

    def resident_bytes(self) -> int:
        with self._lock:
            return self._used_bytes_locked()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for model_id, slot in self._slots.items():
                slot.batcher.close()
                if slot.strategy.is_loaded:
                    self._unload_locked(model_id, slot, "shutdown")
        release_memory(settle=True)

    # ------------------------------------------------------------------ leases and loading

    def _lease(self, spec: ModelSpec) -> _Slot:
        with self._lock:
            slot = self._slots.get(spec.id)
            if slot is None:
                strategy = self._factory(spec, self.runtime)
                batcher = ClipBatcher(
                    partial(_metered_decode, strategy),
                    max_batch_size=self.limits.max_batch_size,
                    max_wait_s=self.limits.max_batch_wait_s,
                    workers=self.limits.max_inflight_per_model,
                    name=f"infer-{spec.id}",
                )
                slot = _Slot(strategy, batcher)
                self._slots[spec.id] = slot
            limits = self.limits
            capacity = limits.max_inflight_per_model * limits.max_batch_size + limits.max_queued_per_model
            if slot.leases >= capacity:
                raise RateLimitedError(
                    f"The model {spec.id!r} has {slot.leases} requests in progress or queued; try again shortly.",
                    param="model",
                )
            slot.leases += 1
            return slot

    def _ensure_loaded(self, slot: _Slot) -> None:
        # A leased model that is loaded stays loaded: evictions only take unleased ones.
        if slot.strategy.is_loaded:
            return
        with slot.load_lock:
            loaded_now = self._load_locked(slot)
        if loaded_now:  # outside the lock: requests waiting for the model need not wait for this too
            release_memory(settle=True)

    def _load_locked(self, slot: _Slot) -> bool:
        """Load the slot's model unless another request did; True when this call loaded it."""
        model_id = slot.strategy.spec.id
        if slot.strategy.is_loaded:
            return False
        if slot.failure is not None and time.monotonic() - slot.failed_at < self.limits.load_retry_after_s:
            raise ModelUnavailableError(slot.failure.message, param="model")
        self._reserve(model_id, slot)
        started = time.perf_counter()
        try:
            slot.strategy.load()
        except Exception as exc:
            slot.strategy.unload()
            with self._lock:
                slot.reserved_bytes = 0
            release_memory(settle=True)
            logger.warning("loading %s failed: %s", model_id, exc)
            slot.failure = ModelUnavailableError(
                f"The model {model_id!r} is registered but could not be loaded: {load_failure_reason(exc)}", param="model"
            )
            slot.failed_at = time.monotonic()
            raise slot.failure from exc
        seconds = time.perf_counter() - started
        slot.failure = None
        measured = slot.strategy.memory_bytes()
        with self._lock:
            slot.reserved_bytes = 0
            slot.resident_bytes = measured
        metrics.MODEL_LOADS.labels(model=model_id).inc()
        metrics.MODEL_LOAD_SECONDS.labels(model=model_id).observe(seconds)
        metrics.RESIDENT_BYTES.labels(model=model_id).set(measured)
        logger.info("loaded %s in %.1fs (%.0f MiB)", model_id, seconds, measured / 2**20)
        return True

    def _reserve(self, model_id: str, slot: _Slot) -> None:
        """Set aside the model's estimated bytes, evicting idle models (least recently used first) to fit."""
        needed = slot.strategy.memory_bytes()
        evicted = False
        with self._lock:
            budget = self.limits.memory_budget_bytes
            if budget is not None:
                while self._used_bytes_locked() + needed > budget:
                    victim = self._eviction_candidate_locked()
                    if victim is None:
                        raise ModelUnavailableError(
                            f"The model {model_id!r} ({needed / 2**20:.0f} MiB) does not fit in the memory budget "
                            f"({budget / 2**20:.0f} MiB, {self._used_bytes_locked() / 2**20:.0f} MiB held by models "
                            "in use or pinned); try again when they are idle.",
                            param="model",
                        )
                    self._unload_locked(victim, self._slots[victim], "evicted")
                    evicted = True
            slot.reserved_bytes = needed
        if evicted:
            release_memory(settle=True)

    def _eviction_candidate_locked(self) -> str | None:
        idle = [
            (slot.last_used, model_id)
            for model_id, slot in self._slots.items()
            if slot.strategy.is_loaded and not slot.leases and not slot.pinned
        ]
        return min(idle)[1] if idle else None

    def _used_bytes_locked(self) -> int:
        return sum(s.resident_bytes + s.reserved_bytes for s in self._slots.values())

    def _unload_locked(self, model_id: str, slot: _Slot, reason: str) -> None:
        slot.strategy.unload()
        slot.resident_bytes = 0
        slot.pinned = False
        metrics.MODEL_UNLOADS.labels(model=model_id, reason=reason).inc()
        metrics.RESIDENT_BYTES.labels(model=model_id).set(0)
        logger.info("unloaded %s (%s)", model_id, reason)

    # ------------------------------------------------------------------ idle reaper

    def reap_idle(self) -> list[str]:
        """Unload unpinned models idle longer than the TTL; returns their ids."""
        if self.limits.idle_ttl_s < 0:
            return []
        now = time.monotonic()
        with self._lock:
            expired = [
                model_id
                for model_id, slot in self._slots.items()
                if slot.strategy.is_loaded
                and not slot.leases
                and not slot.pinned
                and now - slot.last_used > self.limits.idle_ttl_s
            ]
            for model_id in expired:
                self._unload_locked(model_id, self._slots[model_id], "idle")
        if expired:
            release_memory(settle=True)
        return expired

    def _reap_idle_forever(self) -> None:
        interval = min(max(self.limits.idle_ttl_s / 2, 0.5), 30.0)
        while not self._stop.wait(interval):
            self.reap_idle()


def _metered_decode(strategy: ASRStrategy, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
    metrics.BATCH_SIZE.labels(model=strategy.spec.id).observe(len(clips))
    return strategy.transcribe_clips(clips, options)


def load_failure_reason(exc: Exception) -> str:
    """One line saying why a load failed, explaining a missing Hugging Face cache entry."""
    text = str(exc).strip().splitlines()
    first_line = text[0] if text else type(exc).__name__
    if "offline" in str(exc).lower() or "cached files" in str(exc) or "LocalEntryNotFound" in type(exc).__name__:
        return f"its weights are not in the Hugging Face cache and the Hub cannot be reached ({first_line[:300]})"
    return first_line[:300]
