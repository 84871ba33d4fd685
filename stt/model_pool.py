"""Loaded models: preloading, load on first use (once, however many requests ask), and unloading."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from strategies.base import ASRStrategy, RuntimeContext
from strategies.factory import create_strategy

from .devices import release_memory
from .errors import ModelUnavailableError
from .registry import ModelRegistry, ModelSpec

logger = logging.getLogger(__name__)
StrategyFactory = Callable[[ModelSpec, RuntimeContext], ASRStrategy]


@dataclass
class _Slot:
    strategy: ASRStrategy
    load_lock: threading.Lock = field(default_factory=threading.Lock)
    # Engines are not safe to call from several threads at once; one inference per model at a time.
    inference_lock: threading.Lock = field(default_factory=threading.Lock)
    failure: ModelUnavailableError | None = None
    failed_at: float = 0.0


class ModelPool:
    def __init__(
        self,
        registry: ModelRegistry,
        runtime: RuntimeContext,
        factory: StrategyFactory = create_strategy,
        load_retry_after_s: float = 30.0,
    ) -> None:
        self.registry = registry
        self.load_retry_after_s = load_retry_after_s
        self.runtime = runtime
        self._factory = factory
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()
        self.preloaded = threading.Event()

    def preload(self, model_ids: Iterable[str]) -> None:
        """Load each model now; a failure is logged and that model answers 503 until it loads."""
        try:
            for model_id in model_ids:
                try:
                    self._ensure_loaded(model_id)
                except ModelUnavailableError as exc:
                    logger.error("preloading %s failed: %s", model_id, exc.message)
        finally:
            self.preloaded.set()

    @contextmanager
    def use(self, model_id: str) -> Iterator[ASRStrategy]:
        """The loaded strategy for ``model_id``, held exclusively for one inference."""
        slot = self._ensure_loaded(model_id)
        with slot.inference_lock:
            yield slot.strategy

    def loaded_ids(self) -> list[str]:
        with self._slots_lock:
            return [model_id for model_id, slot in self._slots.items() if slot.strategy.is_loaded]

    def unload(self, model_id: str) -> None:
        with self._slots_lock:
            slot = self._slots.pop(model_id, None)
        if slot is None:
            return
        with slot.inference_lock, slot.load_lock:
            slot.strategy.unload()
        release_memory()
        logger.info("unloaded %s", model_id)

    def close(self) -> None:
        for model_id in list(self._slots):
            self.unload(model_id)

    def _slot(self, spec: ModelSpec) -> _Slot:
        with self._slots_lock:
            slot = self._slots.get(spec.id)
            if slot is None:
                slot = self._slots[spec.id] = _Slot(self._factory(spec, self.runtime))
            return slot

    def _ensure_loaded(self, model_id: str) -> _Slot:
        spec = self.registry.get(model_id)
        slot = self._slot(spec)
        if slot.strategy.is_loaded:
            return slot
        with slot.load_lock:
            if not slot.strategy.is_loaded:
                # A model that just failed (say, weights missing offline) fails fast instead of retrying the Hub.
                if slot.failure is not None and time.monotonic() - slot.failed_at < self.load_retry_after_s:
                    raise ModelUnavailableError(slot.failure.message, param="model")
                started = time.perf_counter()
                try:
                    slot.strategy.load()
                except Exception as exc:
                    slot.strategy.unload()
                    release_memory()
                    logger.warning("loading %s failed: %s", model_id, exc)
                    slot.failure = ModelUnavailableError(
                        f"The model {model_id!r} is registered but could not be loaded: {_reason(exc)}",
                        param="model",
                    )
                    slot.failed_at = time.monotonic()
                    raise slot.failure from exc
                slot.failure = None
                logger.info("loaded %s (%s) in %.1fs", model_id, spec.engine, time.perf_counter() - started)
        return slot


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    first_line = text[0] if text else type(exc).__name__
    if "offline" in str(exc).lower() or "cached files" in str(exc) or "LocalEntryNotFound" in type(exc).__name__:
        return f"its weights are not in the Hugging Face cache and the Hub cannot be reached ({first_line[:300]})"
    return first_line[:300]
