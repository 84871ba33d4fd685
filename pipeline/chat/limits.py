"""How much audio one chat request may bring: its audio parts counted before any is decoded, and their seconds added
up as they decode. Over either limit the request is refused with 400 naming ``messages``: each part is decoded and
transcribed on its own (Whisper pads every part to 30 s), so a thousand short parts cost as much as eight hours of
audio."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidInputError

from .types import ChatRequest


@dataclass(frozen=True)
class ChatLimits:
    max_audio_parts: int | None = None
    """Audio parts in all the request's messages; None: no limit."""
    max_audio_s: float | None = None
    """Seconds of audio in all the request's parts; None: no limit beyond each file's own."""


def check_audio_parts(request: ChatRequest, limits: ChatLimits) -> None:
    """Before any part is decoded: no more audio parts than the limit."""
    count = sum(len(message.audio) for message in request.messages)
    most = limits.max_audio_parts
    if most is not None and count > most:
        raise InvalidInputError(
            f"The request has {count} audio parts; at most {most} are accepted in one request.",
            input="messages",
            code="too_many_audio_parts",
        )


class AudioAllowance:
    """The seconds of audio a request's parts have used, added as each part is decoded."""

    def __init__(self, limits: ChatLimits) -> None:
        self.most_s = limits.max_audio_s
        self.used_s = 0.0

    def add(self, seconds: float) -> None:
        """One more part decoded: refused once the request's audio is over the limit."""
        self.used_s += seconds
        if self.most_s is not None and self.used_s > self.most_s:
            raise InvalidInputError(
                f"The request's audio lasts {self.used_s:.0f} seconds in all so far, over the limit of "
                f"{self.most_s:g} seconds.",
                input="messages",
                code="audio_too_long",
            )
