"""Builds the transcriber (registry, device, model pool, diarizer entry) from the operator's settings: one factory
for the server (``server.wiring``) and for anything else that runs the pipeline in its own process (the bulk
runner's ``inprocess`` executor). It reads the settings through ``TranscriberSettings``, the fields it needs of the
one settings class (``server.settings.Settings``), which lives above this layer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Protocol

from core.audio import SAMPLE_RATE
from core.audio_memory import AudioMemoryBudget
from core.devices import Device, memory_budget_bytes, resolve_device
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from strategies.base import DEFAULT_BATCH_SIZE, RuntimeContext

from .pool import ModelPool, PoolLimits
from .transcriber import Transcriber

EMBEDDED_DIARIZER_MODEL = "embedded:resemblyzer-ge2e"
logger = logging.getLogger(__name__)


class TranscriberSettings(Protocol):
    """What the factory reads of the settings (``server.settings.Settings`` has every field)."""

    registry_path: Path
    default_model: str
    device: Literal["auto", "cpu", "cuda"]
    hf_cache_dir: Path | None
    max_audio_duration_s: float
    gpu_memory_budget: float
    cpu_memory_budget: float
    model_idle_ttl_s: float
    max_inflight_per_model: int
    engine_workers: int
    max_queued_per_model: int
    max_batch_size: int
    max_clips_per_request: int
    max_batch_wait_ms: float
    pin_preloaded: bool
    diarization_engine: Literal["embedded", "pyannote", "none"]
    pyannote_model: str
    model_load_retry_s: float
    cpu_threads: int
    model_self_check: Literal["auto", "on", "off"]
    gpu_load_headroom_mb: float
    max_queue_wait_s: float
    audio_memory_budget_mb: float

    @property
    def cpu_cores(self) -> int: ...

    @property
    def decode_slot_count(self) -> int: ...

    @property
    def hf_token_value(self) -> str | None: ...


def diarizer_spec(settings: TranscriberSettings) -> ModelSpec | None:
    """The registry entry for the configured diarization engine; None when diarization is off."""
    if settings.diarization_engine == "none":
        return None
    if settings.diarization_engine == "pyannote":
        return ModelSpec(
            id="pyannote-diarizer",
            engine="pyannote",
            model=settings.pyannote_model,
            description="pyannote.audio speaker diarization pipeline (from the Hugging Face cache).",
        )
    return ModelSpec(
        id="embedded-diarizer",
        engine="embedded_diarizer",
        model=EMBEDDED_DIARIZER_MODEL,
        description="Offline speaker diarization: pyannote's segmentation model, GE2E speaker embeddings, clustering.",
    )


def build_transcriber(settings: TranscriberSettings) -> Transcriber:
    diarizer = diarizer_spec(settings)
    registry = ModelRegistry.from_file(settings.registry_path, extra=[diarizer] if diarizer else [])
    registry.get(settings.default_model, kind="transcription")  # fail at startup on a default that cannot serve
    runtime = RuntimeContext(
        device=resolve_device(settings.device),
        hub=HubAccess(token=settings.hf_token_value, cache_dir=settings.hf_cache_dir),
        cpu_threads=settings.cpu_threads,
        cpu_cores=settings.cpu_cores,
        engine_workers=settings.engine_workers,
    )
    budget = settings.gpu_memory_budget if runtime.device == "cuda" else settings.cpu_memory_budget
    limits = PoolLimits(
        memory_budget_bytes=memory_budget_bytes(budget, runtime.device),
        idle_ttl_s=settings.model_idle_ttl_s,
        max_inflight_per_model=settings.max_inflight_per_model or None,
        max_queued_per_model=settings.max_queued_per_model,
        max_batch_size=settings.max_batch_size or None,
        max_clips_per_request=settings.max_clips_per_request
        or ((settings.max_batch_size or DEFAULT_BATCH_SIZE) if runtime.device == "cuda" else None),
        max_batch_wait_s=settings.max_batch_wait_ms / 1000,
        max_estimated_wait_s=settings.max_queue_wait_s or None,
        pin_preloaded=settings.pin_preloaded,
        load_retry_after_s=settings.model_load_retry_s,
        self_check=self_check_enabled(settings, runtime.device),
        gpu_headroom_bytes=int(settings.gpu_load_headroom_mb * 2**20),
    )
    return Transcriber(
        ModelPool(registry, runtime, limits=limits),
        settings.default_model,
        settings.max_audio_duration_s,
        diarizer_id=diarizer.id if diarizer else None,
        max_concurrent_decodes=settings.decode_slot_count,
        audio_budget=audio_memory_budget(settings),
    )


def audio_memory_budget(settings: TranscriberSettings) -> AudioMemoryBudget:
    """The memory decoded audio may take across requests; a warning when it cannot hold the longest audio accepted."""
    budget = AudioMemoryBudget(int(settings.audio_memory_budget_mb * 2**20))
    longest = (settings.max_audio_duration_s + 1) * SAMPLE_RATE * 4
    if budget.limit_bytes is not None and longest > budget.limit_bytes:
        logger.warning(
            "STT_AUDIO_MEMORY_BUDGET_MB=%g holds %.0f s of audio, less than STT_MAX_AUDIO_DURATION_S=%g: longer "
            "audio gets 413",
            settings.audio_memory_budget_mb,
            budget.limit_bytes / (SAMPLE_RATE * 4),
            settings.max_audio_duration_s,
        )
    return budget


def self_check_enabled(settings: TranscriberSettings, device: Device) -> bool:
    """Whether each load is followed by one second of silence decoded: "auto" checks on GPU, where a CUDA
    library missing from the image lets a model load and then fail every request."""
    return settings.model_self_check == "on" or (settings.model_self_check == "auto" and device == "cuda")


def models_to_preload(transcriber: Transcriber) -> list[str]:
    """Entries marked ``preload``, and always the default model."""
    return [s.id for s in transcriber.registry if s.preload or s.id == transcriber.default_model]
