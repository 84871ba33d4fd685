"""What a chat completion takes and gives, in domain terms: messages (text and audio parts), the request, and how
the answer ended (finish reason, token usage, seconds of audio)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class AudioPart:
    """An audio file (any container FFmpeg reads) carried by a message, and the request input that carried it."""

    data: bytes
    input: str
    """Where the audio was in the request (``messages.[0].content.[1]``): the input named by its errors."""


Part = str | AudioPart


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "".join(part for part in self.parts if isinstance(part, str))

    @property
    def audio(self) -> list[AudioPart]:
        return [part for part in self.parts if isinstance(part, AudioPart)]


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    model_id: str | None
    """A registry id; None: the default model."""
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatUsage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatEnd:
    """How an answer ended: the last item of a stream, and the tail of every result."""

    finish_reason: FinishReason
    usage: ChatUsage
    audio_seconds: float
    processing_s: float


@dataclass(frozen=True)
class ChatResult:
    model_id: str
    text: str
    end: ChatEnd
