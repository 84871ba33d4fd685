"""OpenAI's chat completions with audio input: ``POST /v1/chat/completions``."""

from .route import CHAT_ROUTES, router

__all__ = ["CHAT_ROUTES", "router"]
