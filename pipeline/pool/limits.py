"""The operator's limits on the pool, and the engine's own figures where the operator sets none."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import ASREngine, ModelEngine


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
    max_estimated_wait_s: float | None = None
    """A request whose estimated wait for its model is longer is refused at once (429 with Retry-After); None: no
    bound (``admission``)."""
    pin_preloaded: bool = True
    load_retry_after_s: float = 30.0
    self_check: bool = False
    """After each load, decode one second of silence: a model that loads but cannot run fails its load."""
    gpu_headroom_bytes: int = 2**30
    """On a GPU: memory a load must leave free beyond the model's weights, for activations."""

    def batch_size(self, engine: ModelEngine) -> int:
        """Most clips per engine call; a diarizer takes one request at a time."""
        return self.max_batch_size or (engine.batch_size if isinstance(engine, ASREngine) else 1)

    def inflight(self, engine: ModelEngine) -> int:
        """Batches the engine decodes at once."""
        return self.max_inflight_per_model or (engine.workers if isinstance(engine, ASREngine) else 1)
