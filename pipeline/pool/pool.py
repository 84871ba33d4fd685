"""Resident models under a memory budget, shared safely by concurrent requests.

- Models load on first use (or at startup when preloaded), once, however many requests ask at once.
- Several models stay resident while they fit the budget; when a new one would not fit, the least
  recently used idle model is unloaded. Preloaded models are pinned unless the operator says otherwise.
- A request holds a lease on its model from admission to the end of inference: a leased model is
  never unloaded. Each ASR model decodes through its own batcher (``pipeline.pool.batcher``): concurrent
  requests' clips share batches, on the model's own inference threads; a diarizer runs one request at
  a time. Requests beyond what the batches and the queue hold are refused instead of piling up.
- ASR models and diarizers are the same to the pool: one budget, one eviction order, one idle TTL.
- Models idle longer than the TTL are unloaded by a background reaper.
- On a GPU, a load must also fit in the memory the device really has free (the budget's bookkeeping does not
  see CUDA contexts, allocator caches or other processes), and torch's CUDA cache is emptied when the last
  model in use goes idle rather than after every request.
- With the start-up check on (by default on GPU), a model that loads must decode one second of silence before
  it counts as loaded: a CUDA library missing from the image fails the load, and keeps the pool from being
  ready, instead of failing the first request.

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

from core import metrics
from core.audio import SAMPLE_RATE
from core.devices import cuda_memory_info, empty_cuda_cache, missing_library, release_memory
from core.errors import ModelUnavailableError, OverloadedError
from core.registry import ModelRegistry, ModelSpec
from core.types import DiarizeOptions, SpeakerTurn, Transcription, TranscribeOptions
from strategies.base import ASRStrategy, ModelEngine, RuntimeContext
from strategies.diarization.base import Diarizer
from strategies.factory import create_engine

from .batcher import ClipBatcher

logger = logging.getLogger(__name__)
EngineFactory = Callable[[ModelSpec, RuntimeContext], ModelEngine]


@dataclass(frozen=True)
class PoolLimits:
    memory_budget_bytes: int | None = None
    """None: no budget, every model stays resident."""
    idle_ttl_s: float = -1
    """Unload models idle this long; negative: never."""
    max_inflight_per_model: int | None = None
    """Batches one model decodes at once; None: as many as its engine has workers."""
    max_queued_per_model: int = 32
    """Requests that may wait beyond those the running batches hold."""
    max_batch_size: int | None = None
    """Most clips per engine call; None: the engine's own ``batch_size``."""
    max_clips_per_request: int | None = None
    """Clips one request may have queued at a time; None: one per engine worker (a long file keeps every worker
    busy, and a short request behind it waits for one clip at most)."""
    max_batch_wait_s: float = 0.05
    pin_preloaded: bool = True
    load_retry_after_s: float = 30.0
    self_check: bool = False
    """After each load, decode one second of silence: a model that loads but cannot run fails its load."""
    gpu_headroom_bytes: int = 2**30
    """On a GPU: memory a load must leave free beyond the model's weights, for activations."""


@dataclass(eq=False)
class _Slot:
    spec: ModelSpec
    engine: ModelEngine
    batcher: ClipBatcher | None
    """ASR models: runs every decode on the model's own threads (stable threads keep per-thread allocator
    caches from piling up)."""
    load_lock: threading.Lock = field(default_factory=threading.Lock)
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    """Diarizers: one diarization at a time."""
    leases: int = 0
    running_batches: int = 0
    """Batches on the engine now: a model is never unloaded under one, even after its requests have left."""
    last_used: float = field(default_factory=time.monotonic)
    pinned: bool = False
    resident_bytes: int = 0
    reserved_bytes: int = 0
    failure: ModelUnavailableError | None = None
    failed_at: float = 0.0
    multilingual: bool | None = None
    """ASR models: what the checkpoint said when it last loaded."""

    @property
    def in_use(self) -> bool:
        return bool(self.leases or self.running_batches)


@dataclass(frozen=True)
class ModelState:
    id: str
    loaded: bool
    pinned: bool
    leases: int
    resident_bytes: int


class ModelLease:
    """A request's hold on one loaded model: its registry entry, its engine, and how to run it."""

    def __init__(self, slot: _Slot) -> None:
        self._slot = slot
        self.spec = slot.spec

    @property
    def engine(self) -> ModelEngine:
        return self._slot.engine

    @property
    def asr(self) -> ASRStrategy:
        engine = self._slot.engine
        assert isinstance(engine, ASRStrategy), f"{self.spec.id} is not a transcription model"
        return engine

    def decode(
        self, clips: Sequence[np.ndarray], options: TranscribeOptions, cancelled: threading.Event | None = None
    ) -> list[Transcription]:
        """``transcribe_clips`` through the model's batcher: the clips may share batches with other requests'."""
        assert self._slot.batcher is not None, f"{self.spec.id} is not a transcription model"
        return self._slot.batcher.decode(clips, options, cancelled)

    @property
    def diarizer(self) -> Diarizer:
        engine = self._slot.engine
        assert isinstance(engine, Diarizer), f"{self.spec.id} is not a diarization model"
        return engine

    def embed_voices(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """(clips, dim): one unit-length voice embedding per clip (``Diarizer.embed_voice``)."""
        engine = self.diarizer
        with self._slot.run_lock:
            return np.stack([engine.embed_voice(clip) for clip in clips])

    def diarize(self, audio: np.ndarray, options: DiarizeOptions) -> list[SpeakerTurn]:
        engine = self.diarizer
        with self._slot.run_lock:
            return engine.diarize(
                audio,
                num_speakers=options.num_speakers,
                min_speakers=options.min_speakers,
                max_speakers=options.max_speakers,
            )


class ModelPool:
    def __init__(
        self,
        registry: ModelRegistry,
        runtime: RuntimeContext,
        factory: EngineFactory = create_engine,
        limits: PoolLimits = PoolLimits(),
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.limits = limits
        self._factory = factory
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self.preloaded = threading.Event()
        self._preload_failures: dict[str, str] = {}
        """Preloaded models that failed to load (or their start-up check), with why."""
        self._used_since_idle = False
        """A model has been in use since the pool last went idle (and emptied torch's CUDA cache)."""
        self._stop = threading.Event()
        if limits.idle_ttl_s >= 0:
            threading.Thread(target=self._reap_idle_forever, name="model-reaper", daemon=True).start()

    # ------------------------------------------------------------------ public

    def preload(self, model_ids: Iterable[str]) -> None:
        """Load each model now. A model that fails is logged, answers 503, and keeps the pool from being
        ready; it is tried again every ``load_retry_after_s`` until it loads or the pool closes."""
        failed = self._preload_pass(list(model_ids))
        self.preloaded.set()
        while failed and not self._stop.wait(max(self.limits.load_retry_after_s, 1.0)):
            failed = self._preload_pass(failed)

    def _preload_pass(self, model_ids: list[str]) -> list[str]:
        failures = {}
        for model_id in model_ids:
            try:
                self.load(model_id, pin=self.limits.pin_preloaded)
            except ModelUnavailableError as exc:
                logger.error("preloading %s failed: %s", model_id, exc.message)
                failures[model_id] = exc.message
        with self._lock:
            self._preload_failures = failures
        return list(failures)

    def is_ready(self) -> bool:
        """Preloading has finished and every preloaded model loaded (it may since have been evicted)."""
        return self.not_ready_reason() is None

    def not_ready_reason(self) -> str | None:
        """Why the pool is not ready (still preloading, or which preloaded models failed and why); None when ready."""
        with self._lock:
            if not self.preloaded.is_set():
                return "preloading models"
            if self._preload_failures:
                return " ".join(self._preload_failures.values())
            return None

    def load(self, model_id: str, pin: bool = False) -> None:
        with self.use(self.registry.get(model_id)) as _:
            if pin:
                with self._lock:
                    self._slots[model_id].pinned = True

    @contextmanager
    def use(self, spec: ModelSpec) -> Iterator[ModelLease]:
        """Lease the model, loading it if needed; it stays loaded while the lease is held."""
        slot = self._lease(spec)
        try:
            self._ensure_loaded(slot)
            yield ModelLease(slot)
        finally:
            with self._lock:
                slot.leases -= 1
                slot.last_used = time.monotonic()
                idle = self._went_idle_locked()
            if idle:
                empty_cuda_cache()

    def unload(self, model_id: str, reason: str = "admin") -> bool:
        """Unload an idle model now (pinned or not). False when it is not loaded or is in use."""
        self.registry.get(model_id)
        with self._lock:
            slot = self._slots.get(model_id)
            if slot is None or not slot.engine.is_loaded or slot.in_use:
                return False
            self._unload_locked(model_id, slot, reason)
        release_memory(settle=True)
        return True

    def states(self) -> list[ModelState]:
        with self._lock:
            return [
                ModelState(mid, s.engine.is_loaded, s.pinned, s.leases, s.resident_bytes)
                for mid, s in self._slots.items()
            ]

    def known_multilingual(self, model_id: str) -> bool | None:
        """Whether the ASR model handles languages other than English, once it has loaded; None before."""
        with self._lock:
            slot = self._slots.get(model_id)
            return slot.multilingual if slot is not None else None

    def state(self, model_id: str) -> ModelState | None:
        """The model's state; None when no request has used it yet."""
        return next((s for s in self.states() if s.id == model_id), None)

    def loaded_ids(self) -> list[str]:
        return [state.id for state in self.states() if state.loaded]

    def resident_bytes(self) -> int:
        with self._lock:
            return self._used_bytes_locked()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for model_id, slot in self._slots.items():
                if slot.batcher is not None:
                    slot.batcher.close()
                if slot.engine.is_loaded:
                    self._unload_locked(model_id, slot, "shutdown")
        release_memory(settle=True)

    # ------------------------------------------------------------------ leases and loading

    def _lease(self, spec: ModelSpec) -> _Slot:
        with self._lock:
            slot = self._slots.get(spec.id)
        if slot is None:
            # Building an engine imports its module (transformers takes seconds): never under the pool lock,
            # which /v1/models and every other request take.
            built = self._new_slot(spec)
            with self._lock:
                slot = self._slots.setdefault(spec.id, built)
            if slot is not built and built.batcher is not None:  # another request built it first
                built.batcher.close()
        with self._lock:
            limits = self.limits
            capacity = self._inflight(slot) * self._batch_size(slot) + limits.max_queued_per_model
            if slot.leases >= capacity:
                raise OverloadedError(
                    f"The model {spec.id!r} has {slot.leases} requests in progress or queued; try again shortly.",
                    input="model",
                )
            slot.leases += 1
            self._used_since_idle = True
            return slot

    def _new_slot(self, spec: ModelSpec) -> _Slot:
        slot = _Slot(spec, self._factory(spec, self.runtime), batcher=None)
        if isinstance(slot.engine, ASRStrategy):
            slot.batcher = ClipBatcher(
                partial(self._run_batch, slot),
                max_batch_size=self._batch_size(slot),
                max_wait_s=self.limits.max_batch_wait_s,
                workers=self._inflight(slot),
                name=f"infer-{spec.id}",
                request_window=self.limits.max_clips_per_request or self._inflight(slot),
            )
        return slot

    def _batch_size(self, slot: _Slot) -> int:
        engine = slot.engine
        return self.limits.max_batch_size or (engine.batch_size if isinstance(engine, ASRStrategy) else 1)

    def _inflight(self, slot: _Slot) -> int:
        engine = slot.engine
        return self.limits.max_inflight_per_model or (engine.workers if isinstance(engine, ASRStrategy) else 1)

    def _run_batch(self, slot: _Slot, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        """One engine call, on the batcher's thread, holding the model for its duration."""
        with self._lock:
            slot.running_batches += 1
        try:
            engine = slot.engine
            assert isinstance(engine, ASRStrategy)
            metrics.BATCH_SIZE.labels(model=slot.spec.id).observe(len(clips))
            return engine.transcribe_clips(clips, options)
        finally:
            with self._lock:
                slot.running_batches -= 1
                slot.last_used = time.monotonic()
                idle = self._went_idle_locked()
            if idle:
                empty_cuda_cache()

    def _went_idle_locked(self) -> bool:
        """True once when the last model in use goes idle: the moment to empty torch's CUDA cache, which
        synchronises the whole GPU (cheap with nothing running; costly after every request under load)."""
        if not self._used_since_idle or any(slot.in_use for slot in self._slots.values()):
            return False
        self._used_since_idle = False
        return True

    def _ensure_loaded(self, slot: _Slot) -> None:
        # A leased model that is loaded stays loaded: evictions only take unleased ones.
        if slot.engine.is_loaded:
            return
        with slot.load_lock:
            loaded_now = self._load_locked(slot)
        if loaded_now:  # outside the lock: requests waiting for the model need not wait for this too
            release_memory(settle=True)

    def _load_locked(self, slot: _Slot) -> bool:
        """Load the slot's model unless another request did; True when this call loaded it."""
        model_id = slot.spec.id
        if slot.engine.is_loaded:
            return False
        if slot.failure is not None and time.monotonic() - slot.failed_at < self.limits.load_retry_after_s:
            raise ModelUnavailableError(slot.failure.message, input="model")
        self._reserve(model_id, slot)
        started = time.perf_counter()
        try:
            slot.engine.load()
            if self.limits.self_check:
                self._check_it_runs(slot)
        except Exception as exc:
            slot.engine.unload()
            with self._lock:
                slot.reserved_bytes = 0
            release_memory(settle=True)
            logger.warning("loading %s failed: %s", model_id, exc)
            message = (
                f"The model {model_id!r} {exc}"
                if isinstance(exc, SelfCheckFailed)
                else f"The model {model_id!r} is registered but could not be loaded: {load_failure_reason(exc)}"
            )
            slot.failure = ModelUnavailableError(message, input="model")
            slot.failed_at = time.monotonic()
            raise slot.failure from exc
        seconds = time.perf_counter() - started
        slot.failure = None
        if isinstance(slot.engine, ASRStrategy):
            slot.multilingual = slot.engine.is_multilingual
        measured = slot.engine.memory_bytes()
        with self._lock:
            slot.reserved_bytes = 0
            slot.resident_bytes = measured
        metrics.MODEL_LOADS.labels(model=model_id).inc()
        metrics.MODEL_LOAD_SECONDS.labels(model=model_id).observe(seconds)
        metrics.RESIDENT_BYTES.labels(model=model_id).set(measured)
        logger.info("loaded %s in %.1fs (%.0f MiB)", model_id, seconds, measured / 2**20)
        return True

    def _check_it_runs(self, slot: _Slot) -> None:
        """Decode one second of silence through the model's batcher, as a request would."""
        engine = slot.engine
        if slot.batcher is None or not isinstance(engine, ASRStrategy):  # a diarizer: silence never reaches its GPU
            return
        language = slot.spec.language or (None if engine.is_multilingual else "en")
        try:
            slot.batcher.decode([np.zeros(SAMPLE_RATE, dtype=np.float32)], TranscribeOptions(language=language))
        except Exception as exc:
            raise SelfCheckFailed(self_check_failure(self.runtime.device, exc)) from exc

    def _reserve(self, model_id: str, slot: _Slot) -> None:
        """Set aside the model's estimated bytes, evicting idle models (least recently used first) to fit."""
        needed = slot.engine.memory_bytes()
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
                            input="model",
                        )
                    self._unload_locked(victim, self._slots[victim], "evicted")
                    evicted = True
            slot.reserved_bytes = needed
        if evicted:
            release_memory(settle=True)
        if self.runtime.device == "cuda":
            self._fit_in_free_gpu_memory(model_id, slot, needed)

    def _fit_in_free_gpu_memory(self, model_id: str, slot: _Slot, needed: int) -> None:
        """Evict idle models until the GPU really has the model's bytes and the activation headroom free; refuse
        the load when it cannot. Loads under way elsewhere have not allocated all they reserved yet: their
        reservations count as taken."""
        wanted = needed + self.limits.gpu_headroom_bytes
        while (info := cuda_memory_info()) is not None:
            with self._lock:
                free = info[0] - sum(s.reserved_bytes for s in self._slots.values() if s is not slot)
                if free >= wanted:
                    return
                victim = self._eviction_candidate_locked()
                if victim is None:
                    slot.reserved_bytes = 0
                    raise ModelUnavailableError(
                        f"The model {model_id!r} needs about {needed / 2**20:.0f} MiB of GPU memory, plus "
                        f"{self.limits.gpu_headroom_bytes / 2**20:.0f} MiB for activations, but the GPU has "
                        f"{max(free, 0) / 2**20:.0f} MiB free (of {info[1] / 2**20:.0f} MiB) and no idle model to "
                        "unload; try again when models in use are idle.",
                        input="model",
                    )
                self._unload_locked(victim, self._slots[victim], "evicted")
            release_memory(settle=True)

    def _eviction_candidate_locked(self) -> str | None:
        idle = [
            (slot.last_used, model_id)
            for model_id, slot in self._slots.items()
            if slot.engine.is_loaded and not slot.in_use and not slot.pinned
        ]
        return min(idle)[1] if idle else None

    def _used_bytes_locked(self) -> int:
        return sum(s.resident_bytes + s.reserved_bytes for s in self._slots.values())

    def _unload_locked(self, model_id: str, slot: _Slot, reason: str) -> None:
        slot.engine.unload()
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
                if slot.engine.is_loaded
                and not slot.in_use
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
