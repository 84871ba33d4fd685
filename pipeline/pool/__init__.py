"""The model pool: resident models under a memory budget, shared safely by concurrent requests."""

from __future__ import annotations

from .batcher import BatcherClosed, ClipBatcher
from .pool import ModelLease, ModelPool, ModelState, PoolLimits

__all__ = ["BatcherClosed", "ClipBatcher", "ModelLease", "ModelPool", "ModelState", "PoolLimits"]
