"""ASR engines behind one interface (load, transcribe, unload) and the factory that picks one."""

from .base import ASRStrategy, RuntimeContext
from .factory import create_strategy

__all__ = ["ASRStrategy", "RuntimeContext", "create_strategy"]
