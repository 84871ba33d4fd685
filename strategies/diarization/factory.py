"""Builds the diarizer a registry entry names."""

from __future__ import annotations

from core.registry import ModelSpec

from ..base import RuntimeContext
from .base import Diarizer


def create_diarizer(spec: ModelSpec, runtime: RuntimeContext) -> Diarizer:
    """``embedded_diarizer``: :class:`~strategies.diarization.embedded.EmbeddedDiarizer` (offline, no token);
    ``pyannote``: :class:`~strategies.diarization.pyannote_engine.PyannoteDiarizer` with the entry's
    model, from the Hugging Face cache. Nothing is loaded until ``load()``."""
    if spec.engine == "embedded_diarizer":
        from .embedded import EmbeddedDiarizer

        return EmbeddedDiarizer(device=runtime.device)
    if spec.engine == "pyannote":
        from .pyannote_engine import PyannoteDiarizer

        hub = runtime.hub
        cache_dir = str(hub.cache_dir) if hub.cache_dir else None
        return PyannoteDiarizer(model=spec.model, token=hub.token, cache_dir=cache_dir, device=runtime.device)
    raise ValueError(f"{spec.id!r}: {spec.engine!r} is not a diarization engine")
