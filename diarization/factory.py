"""Pick a diarization engine by name."""

from __future__ import annotations

from typing import Any

from .base import Diarizer

ENGINES = ("embedded", "pyannote")


def create_diarizer(engine: str, **kwargs: Any) -> Diarizer:
    """``"embedded"``: :class:`~diarization.embedded.EmbeddedDiarizer` (offline, no token);
    ``"pyannote"``: :class:`~diarization.pyannote_engine.PyannoteDiarizer`. ``kwargs`` go to the
    engine's constructor. Nothing is loaded until ``load()`` or the first ``diarize()``."""
    if engine == "embedded":
        from .embedded import EmbeddedDiarizer

        return EmbeddedDiarizer(**kwargs)
    if engine == "pyannote":
        from .pyannote_engine import PyannoteDiarizer

        return PyannoteDiarizer(**kwargs)
    raise ValueError(f"Unknown diarization engine {engine!r}; expected one of {', '.join(ENGINES)}")
