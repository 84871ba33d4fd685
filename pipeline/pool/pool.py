"""The pool: leases on models that load on first use (or at start-up when preloaded), readiness once the
preloaded models have loaded, unloads on demand, and the reaper that unloads models idle past the TTL.

Evictions and unloads happen under the pool lock and only touch unleased models; loads run outside it,
with the bytes they will take reserved against the budget so that concurrent loads do not overshoot it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import numpy as np

from core import metrics
from core.audio import SAMPLE_RATE
from core.devices import empty_cuda_cache, release_memory
from core.errors import ModelUnavailableError, OverloadedError
from core.registry import ModelRegistry, ModelSpec
from core.types import Transcription, TranscribeOptions
from strategies.base import ASREngine, ModelEngine, RuntimeContext
from strategies.factory import create_engine

from .admission import Admission
from .batcher import ClipBatcher
from .eviction import idle_past
from .lease import ModelLease
from .limits import PoolLimits
from .loading import ensure_loaded
from .memory_budget import MemoryBudget
from .share import Share
from .slot import ModelState, Slot
from .throughput import Throughput

logger = logging.getLogger(__name__)
EngineFactory = Callable[[ModelSpec, RuntimeContext], ModelEngine]


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
        self._slots: dict[str, Slot] = {}
        self._lock = threading.Lock()
        self._budget = MemoryBudget(self._slots, self._lock)
        self.preloaded = threading.Event()
        self._preload_failures: dict[str, str] = {}
        """Preloaded models that failed to load (or their start-up check), with why."""
        self._used_since_idle = False
        """A model has been in use since the pool last went idle (and emptied torch's CUDA cache)."""
        self._stop = threading.Event()
        if limits.idle_ttl_s >= 0:
            threading.Thread(target=self._reap_idle_forever, name="model-reaper", daemon=True).start()

    # ------------------------------------------------------------------ preloading and readiness

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

    # ------------------------------------------------------------------ leases

    def load(self, model_id: str, pin: bool = False) -> None:
        with self.use(self.registry.get(model_id)) as _:
            if pin:
                with self._lock:
                    self._slots[model_id].pinned = True

    def has_room(self, model_id: str) -> bool:
        """Whether background work may start on the model now: no interactive request waits beyond what its running
        batches hold (a model no request has used yet has room)."""
        with self._lock:
            slot = self._slots.get(model_id)
            if slot is None:
                return True
            limits = self.limits
            return slot.leases < limits.inflight(slot.engine) * limits.batch_size(slot.engine)

    @contextmanager
    def use(self, spec: ModelSpec, audio_s: float | None = None, background: bool = False) -> Iterator[ModelLease]:
        """Lease the model, loading it if needed; it stays loaded while the lease is held. ``audio_s``: the seconds
        of audio the request brings to a transcription model, which admits it only if its estimated wait is within
        the bound (``admission``); None: a request that is not counted (a live turn, the start-up check).

        ``background``: work of lower priority (a batch item), which takes its turn when ``has_room`` says so: it is
        counted apart from the interactive requests and left out of the admission's estimated waits, so that it never
        makes the pool refuse an interactive request (429)."""
        slot, share = self._lease(spec, None if background else audio_s, background)
        try:
            ensure_loaded(slot, self.limits, self.runtime.device, self._budget)
            yield ModelLease(slot, share)
        finally:
            if slot.admission is not None:
                slot.admission.leave(share)
            with self._lock:
                if background:
                    slot.background_leases -= 1
                else:
                    slot.leases -= 1
                slot.last_used = time.monotonic()
                idle = self._went_idle_locked()
            if idle:
                empty_cuda_cache()

    @contextmanager
    def reserved(self, spec: ModelSpec, audio_s: float | None, background: bool = False) -> Iterator[None]:
        """Admit a request of ``audio_s`` (the duration its file declares) while its audio decodes, before the
        lease: refused at once (``OverloadedError``) when its wait would be over the bound, and counted meanwhile,
        so that requests arriving together are not all admitted to the decoder. None: nothing to reserve; background
        work (``use``) reserves nothing."""
        admission = self.admission(spec.id) if audio_s is not None and not background else None
        if admission is None or audio_s is None:
            yield
            return
        share = admission.admit(audio_s)
        try:
            yield
        finally:
            admission.leave(share)

    def _lease(self, spec: ModelSpec, audio_s: float | None = None, background: bool = False) -> tuple[Slot, Share]:
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
            if background:
                slot.background_leases += 1
                self._used_since_idle = True
                return slot, Share()
            limits = self.limits
            capacity = limits.inflight(slot.engine) * limits.batch_size(slot.engine) + limits.max_queued_per_model
            if slot.leases >= capacity:
                retry_after_s = slot.admission.first_leaves_in_s() if slot.admission is not None else None
                when = f"in {max(retry_after_s, 1):.0f} s" if retry_after_s is not None else "shortly"
                raise OverloadedError(
                    f"The model {spec.id!r} has {slot.leases} requests in progress or queued; try again {when}.",
                    input="model",
                    retry_after_s=retry_after_s,
                )
            share = Share()
            if audio_s is not None and slot.admission is not None:
                share = slot.admission.admit(audio_s)  # refused at once when it would wait too long
            slot.leases += 1
            self._used_since_idle = True
            return slot, share

    def _new_slot(self, spec: ModelSpec) -> Slot:
        slot = Slot(spec, self._factory(spec, self.runtime), batcher=None)
        if isinstance(slot.engine, ASREngine):
            workers = self.limits.inflight(slot.engine)
            slot.admission = Admission(spec.id, Throughput(workers), self.limits.max_estimated_wait_s)
            slot.batcher = ClipBatcher(
                partial(self._run_batch, slot),
                max_batch_size=self.limits.batch_size(slot.engine),
                max_wait_s=self.limits.max_batch_wait_s,
                workers=workers,
                name=f"infer-{spec.id}",
                request_window=self.limits.max_clips_per_request or workers,
                queue_depth=metrics.QUEUED_CLIPS.labels(model=spec.id).set,
            )
        return slot

    def _run_batch(self, slot: Slot, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        """One engine call, on the batcher's thread, holding the model for its duration."""
        with self._lock:
            slot.running_batches += 1
        try:
            engine = slot.engine
            assert isinstance(engine, ASREngine) and slot.admission is not None
            metrics.BATCH_SIZE.labels(model=slot.spec.id).observe(len(clips))
            started = time.perf_counter()
            results = engine.transcribe_clips(clips, options)
            audio_s = sum(len(clip) for clip in clips) / SAMPLE_RATE
            slot.admission.throughput.record(audio_s, time.perf_counter() - started)
            return results
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

    # ------------------------------------------------------------------ state and unloading

    def unload(self, model_id: str, reason: str = "admin") -> bool:
        """Unload an idle model now (pinned or not). False when it is not loaded or is in use."""
        self.registry.get(model_id)
        with self._lock:
            slot = self._slots.get(model_id)
            if slot is None or not slot.engine.is_loaded or slot.in_use:
                return False
            slot.unload_locked(reason)
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

    def admission(self, model_id: str) -> Admission | None:
        """The transcription model's admission (what it has admitted, its measured speed); None for other kinds of
        model, or one no request has used yet."""
        with self._lock:
            slot = self._slots.get(model_id)
            return slot.admission if slot is not None else None

    def state(self, model_id: str) -> ModelState | None:
        """The model's state; None when no request has used it yet."""
        return next((s for s in self.states() if s.id == model_id), None)

    def loaded_ids(self) -> list[str]:
        return [state.id for state in self.states() if state.loaded]

    def resident_bytes(self) -> int:
        with self._lock:
            return self._budget.used_bytes_locked()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for slot in self._slots.values():
                if slot.batcher is not None:
                    slot.batcher.close()
                if slot.engine.is_loaded:
                    slot.unload_locked("shutdown")
        release_memory(settle=True)

    # ------------------------------------------------------------------ idle reaper

    def reap_idle(self) -> list[str]:
        """Unload unpinned models idle longer than the TTL; returns their ids."""
        if self.limits.idle_ttl_s < 0:
            return []
        now = time.monotonic()
        with self._lock:
            expired = idle_past(self.limits.idle_ttl_s, now, self._slots)
            for model_id in expired:
                self._slots[model_id].unload_locked("idle")
        if expired:
            release_memory(settle=True)
        return expired

    def _reap_idle_forever(self) -> None:
        interval = min(max(self.limits.idle_ttl_s / 2, 0.5), 30.0)
        while not self._stop.wait(interval):
            self.reap_idle()
