"""Room for a load: the bytes it will take are reserved against the operator's budget and, on a GPU, the memory
the device really has free (the budget's bookkeeping does not see CUDA contexts, allocator caches or other
processes), evicting idle models, the least recently used first, until it fits."""

from __future__ import annotations

import threading

from core.devices import cuda_memory_info, release_memory
from core.errors import ModelUnavailableError

from .eviction import least_recently_used
from .limits import PoolLimits
from .slot import Slot


class MemoryBudget:
    """Keeps the accounts of the pool's slots, under the pool's lock."""

    def __init__(self, slots: dict[str, Slot], lock: threading.Lock) -> None:
        self._slots = slots
        self._lock = lock

    def used_bytes_locked(self) -> int:
        """Bytes the models hold or have reserved; the caller holds the pool's lock."""
        return sum(s.resident_bytes + s.reserved_bytes for s in self._slots.values())

    def reserve(self, slot: Slot, limits: PoolLimits, device: str) -> None:
        """Set aside the model's estimated bytes, evicting idle models (least recently used first) to fit."""
        model_id = slot.spec.id
        needed = slot.engine.memory_bytes()
        evicted = False
        with self._lock:
            budget = limits.memory_budget_bytes
            if budget is not None:
                while self.used_bytes_locked() + needed > budget:
                    victim = least_recently_used(self._slots)
                    if victim is None:
                        raise ModelUnavailableError(
                            f"The model {model_id!r} ({needed / 2**20:.0f} MiB) does not fit in the memory budget "
                            f"({budget / 2**20:.0f} MiB, {self.used_bytes_locked() / 2**20:.0f} MiB held by models "
                            "in use or pinned); try again when they are idle.",
                            input="model",
                        )
                    self._slots[victim].unload_locked("evicted")
                    evicted = True
            slot.reserved_bytes = needed
        if evicted:
            release_memory(settle=True)
        if device == "cuda":
            self._fit_in_free_gpu_memory(slot, needed, limits.gpu_headroom_bytes)

    def cancel_reservation(self, slot: Slot) -> None:
        """The load failed: its bytes are free again."""
        with self._lock:
            slot.reserved_bytes = 0

    def settle_reservation(self, slot: Slot, measured_bytes: int) -> None:
        """The load succeeded: the model holds what it measured, not what was reserved for it."""
        with self._lock:
            slot.reserved_bytes = 0
            slot.resident_bytes = measured_bytes

    def _fit_in_free_gpu_memory(self, slot: Slot, needed: int, headroom: int) -> None:
        """Evict idle models until the GPU really has the model's bytes and the activation headroom free; refuse
        the load when it cannot. Loads under way elsewhere have not allocated all they reserved yet: their
        reservations count as taken."""
        wanted = needed + headroom
        while (info := cuda_memory_info()) is not None:
            with self._lock:
                free = info[0] - sum(s.reserved_bytes for s in self._slots.values() if s is not slot)
                if free >= wanted:
                    return
                victim = least_recently_used(self._slots)
                if victim is None:
                    slot.reserved_bytes = 0
                    raise ModelUnavailableError(
                        f"The model {slot.spec.id!r} needs about {needed / 2**20:.0f} MiB of GPU memory, plus "
                        f"{headroom / 2**20:.0f} MiB for activations, but the GPU has "
                        f"{max(free, 0) / 2**20:.0f} MiB free (of {info[1] / 2**20:.0f} MiB) and no idle model to "
                        "unload; try again when models in use are idle.",
                        input="model",
                    )
                self._slots[victim].unload_locked("evicted")
            release_memory(settle=True)
