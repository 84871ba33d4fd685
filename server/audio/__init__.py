"""OpenAI's audio API (``/v1/audio/transcriptions``, ``/v1/audio/translations``), ``/v1/audio/diarizations`` and
``/transcribe``: the routes,
their forms, the response formats and the known speakers' references."""

from .routes import AUDIO_ROUTES, router

__all__ = ["AUDIO_ROUTES", "router"]
