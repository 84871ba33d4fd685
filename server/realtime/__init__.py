"""OpenAI's Realtime API, transcription sessions only: ``GET /v1/realtime?intent=transcription`` (WebSocket)."""

from .route import router

__all__ = ["router"]
