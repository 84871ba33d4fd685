"""Which models may be unloaded: loaded, idle (no lease, no running batch) and not pinned. Called under the
pool's lock."""

from __future__ import annotations

from collections.abc import Mapping

from .slot import Slot


def least_recently_used(slots: Mapping[str, Slot]) -> str | None:
    """The idle model to evict when memory is short; None when every model is in use or pinned."""
    idle = [
        (slot.last_used, model_id)
        for model_id, slot in slots.items()
        if slot.engine.is_loaded and not slot.in_use and not slot.pinned
    ]
    return min(idle)[1] if idle else None


def idle_past(ttl_s: float, now: float, slots: Mapping[str, Slot]) -> list[str]:
    """The idle models unused for longer than ``ttl_s``."""
    return [
        model_id
        for model_id, slot in slots.items()
        if slot.engine.is_loaded and not slot.in_use and not slot.pinned and now - slot.last_used > ttl_s
    ]
