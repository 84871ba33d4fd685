"""The model a request names: a registry id, or an alias of the configured default model."""

from __future__ import annotations

DEFAULT_MODEL_ALIASES = frozenset({"whisper-1"})


def requested_model(model: str | None) -> str | None:
    """The registry id a request names; None for the default model (``whisper-1`` or nothing)."""
    return None if not model or model in DEFAULT_MODEL_ALIASES else model
