"""The model pool: resident models under a memory budget, shared safely by concurrent requests.

- A request holds a lease on its model from admission to the end of inference: a leased model is never
  unloaded. Requests beyond what the batches and the queue hold are refused instead of piling up (``pool``).
- Each ASR model decodes through its own batcher: concurrent requests' clips share batches, on the model's own
  inference threads, the request that has had the least served first (``batcher``, ``share``); a diarizer runs
  one request at a time (``lease``).
- A request that brings audio to an ASR model is admitted only if its estimated wait, from the audio admitted before
  it and the model's measured speed, is within the bound; otherwise it is refused at once with the time after which
  it would not be (``admission``, ``fair_share``, ``throughput``).
- Models load on first use, or at start-up when preloaded, once however many requests ask; with the start-up
  check on, a model must decode a second of silence before it counts as loaded (``loading``).
- Several models stay resident while they fit the budget and, on a GPU, the memory really free; when a load
  would not fit, idle models are unloaded, the least recently used first (``memory_budget``, ``eviction``).
  Preloaded models are pinned unless the operator says otherwise (``limits``).
- Models idle longer than the TTL are unloaded by a background reaper, and torch's CUDA cache is emptied when the
  last model in use goes idle rather than after every request (``pool``).
- ASR models and diarizers are the same to the pool: one budget, one eviction order, one idle TTL.
"""

from __future__ import annotations

from .batcher import BatcherClosed, ClipBatcher
from .lease import ModelLease
from .limits import PoolLimits
from .pool import ModelPool
from .slot import ModelState

__all__ = ["BatcherClosed", "ClipBatcher", "ModelLease", "ModelPool", "ModelState", "PoolLimits"]
