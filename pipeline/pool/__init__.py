"""The model pool: resident models under a memory budget, shared safely by concurrent requests."""

from __future__ import annotations

from .batcher import BatcherClosed, ClipBatcher
from .lease import ModelLease
from .limits import PoolLimits
from .pool import ModelPool
from .slot import ModelState

__all__ = ["BatcherClosed", "ClipBatcher", "ModelLease", "ModelPool", "ModelState", "PoolLimits"]
