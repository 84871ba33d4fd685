"""OpenAI's chat completions with audio input: ``POST /v1/chat/completions``."""

from .route import router

__all__ = ["router"]
