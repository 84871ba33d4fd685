"""One model's place in the pool: its engine, its batcher, who holds it and the bytes it takes."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from core import metrics
from core.errors import ModelUnavailableError
from core.registry import ModelSpec
from strategies.base import ModelEngine

from .admission import Admission
from .batcher import ClipBatcher

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Slot:
    """Its counters and bytes are read and written under the pool's lock."""

    spec: ModelSpec
    engine: ModelEngine
    batcher: ClipBatcher | None
    """ASR models: runs every decode on the model's own threads (stable threads keep per-thread allocator
    caches from piling up)."""
    admission: Admission | None = None
    """ASR models: the requests admitted with their audio, the model's measured speed, the bound on the wait."""
    load_lock: threading.Lock = field(default_factory=threading.Lock)
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    """Diarizers: one diarization at a time."""
    leases: int = 0
    background_leases: int = 0
    """Leases of background work (batch items): outside ``leases``, the count interactive requests are admitted
    against, so that they never take an interactive request's place; the model stays loaded under them."""
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
        return bool(self.leases or self.background_leases or self.running_batches)

    def unload_locked(self, reason: str) -> None:
        """Unload the model and count it, under the pool's lock."""
        model_id = self.spec.id
        self.engine.unload()
        self.resident_bytes = 0
        self.pinned = False
        metrics.MODEL_UNLOADS.labels(model=model_id, reason=reason).inc()
        metrics.RESIDENT_BYTES.labels(model=model_id).set(0)
        logger.info("unloaded %s (%s)", model_id, reason)


@dataclass(frozen=True)
class ModelState:
    """What the pool reports of one model."""

    id: str
    loaded: bool
    pinned: bool
    leases: int
    resident_bytes: int
