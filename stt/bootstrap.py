"""Builds the transcriber (registry, device, model pool) from the settings."""

from __future__ import annotations

from strategies.base import RuntimeContext

from .devices import memory_budget_bytes, resolve_device
from .diarize import build_runner
from .model_files import HubAccess
from .model_pool import ModelPool, PoolLimits
from .registry import ModelRegistry
from .settings import Settings
from .transcriber import Transcriber


def build_transcriber(settings: Settings) -> Transcriber:
    registry = ModelRegistry.from_file(settings.registry_path)
    registry.get(settings.default_model)  # fail at startup on a default that is not registered
    runtime = RuntimeContext(
        device=resolve_device(settings.device),
        hub=HubAccess(token=settings.hf_token_value, cache_dir=settings.hf_cache_dir),
        cpu_threads=settings.cpu_thread_count,
    )
    budget = settings.gpu_memory_budget if runtime.device == "cuda" else settings.cpu_memory_budget
    limits = PoolLimits(
        memory_budget_bytes=memory_budget_bytes(budget, runtime.device),
        idle_ttl_s=settings.model_idle_ttl_s,
        max_inflight_per_model=settings.max_inflight_per_model,
        max_queued_per_model=settings.max_queued_per_model,
        max_batch_size=settings.max_batch_size,
        max_batch_wait_s=settings.max_batch_wait_ms / 1000,
        pin_preloaded=settings.pin_preloaded,
        load_retry_after_s=settings.model_load_retry_s,
    )
    diarizer = build_runner(settings.diarization_engine, settings.pyannote_model, runtime.hub, runtime.device)
    return Transcriber(
        ModelPool(registry, runtime, limits=limits),
        settings.default_model,
        settings.max_audio_duration_s,
        settings.log_transcripts,
        diarizer=diarizer,
    )


def models_to_preload(transcriber: Transcriber) -> list[str]:
    """Entries marked ``preload``, and always the default model."""
    return [s.id for s in transcriber.registry if s.preload or s.id == transcriber.default_model]
