"""Server events of OpenAI's Realtime API (``openai.types.realtime``), rendered from the live session's."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from core.errors import STTError
from core.types import TokenLogprob
from pipeline.live import (
    Cleared,
    Committed,
    LiveEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
)

from ..edge.errors import body_of
from pipeline.response_formats import tokens_json

TRANSCRIPTION = "conversation.item.input_audio_transcription"
MAX_ECHOED_CHARS = 64
"""What an error event repeats of a client's value (an unknown event type, its ``event_id``) is cut to this length."""
MAX_MESSAGE_CHARS = 1000
"""An error message is cut to this length, whatever input it quotes."""


def _event(event_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": event_type, "event_id": f"event_{secrets.token_hex(11)}", **fields}


def session_event(event_type: str, session: dict[str, Any]) -> dict[str, Any]:
    """``session.created`` or ``session.updated``."""
    return _event(event_type, session=session)


def error_event(
    message: str, error_type: str = "invalid_request_error", code: str | None = None, param: str | None = None,
    client_event_id: object = None,
) -> dict[str, Any]:
    error = {
        "type": error_type,
        "code": code,
        "message": _cut(message, MAX_MESSAGE_CHARS),
        "param": param,
        "event_id": client_event_id_of(client_event_id),
    }
    return _event("error", error=error)


def client_event_id_of(value: object) -> str | None:
    """The client's ``event_id`` as an error event may repeat it: a string, cut to ``MAX_ECHOED_CHARS``; else None."""
    return _cut(value, MAX_ECHOED_CHARS) if isinstance(value, str) else None


def shown(value: object) -> str:
    """A client's value quoted in a message: its ``repr``, cut to ``MAX_ECHOED_CHARS``."""
    return _cut(repr(value), MAX_ECHOED_CHARS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def domain_error_event(
    exc: STTError, client_event_id: object = None, fields: Mapping[str, str] = {}
) -> dict[str, Any]:
    """An ``error`` event for a domain error, its input named as ``fields`` say the client sent it."""
    error = body_of(exc, fields)["error"]
    return error_event(error["message"], error["type"], error["code"], error["param"], client_event_id)


def render(event: LiveEvent) -> dict[str, Any]:
    match event:
        case SpeechStarted(item_id, start_ms):
            return _event("input_audio_buffer.speech_started", item_id=item_id, audio_start_ms=start_ms)
        case SpeechStopped(item_id, end_ms):
            return _event("input_audio_buffer.speech_stopped", item_id=item_id, audio_end_ms=end_ms)
        case Committed(item_id, previous_item_id):
            return _event("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous_item_id)
        case Cleared():
            return _event("input_audio_buffer.cleared")
        case TranscriptDelta(item_id, delta, logprobs):
            return _event(
                f"{TRANSCRIPTION}.delta", item_id=item_id, content_index=0, delta=delta, **_logprobs(logprobs)
            )
        case TranscriptCompleted(item_id, transcript, seconds, _, logprobs):
            usage = {"type": "duration", "seconds": round(seconds, 3)}
            return _event(
                f"{TRANSCRIPTION}.completed", item_id=item_id, content_index=0, transcript=transcript, usage=usage,
                **_logprobs(logprobs),
            )
        case TranscriptFailed(item_id, exc):
            return _event(f"{TRANSCRIPTION}.failed", item_id=item_id, content_index=0, error=body_of(exc)["error"])
    raise TypeError(f"not a live event: {event!r}")


def _logprobs(tokens: list[TokenLogprob] | None) -> dict[str, Any]:
    """OpenAI's ``logprobs`` field, present only when the session asked for it."""
    return {} if tokens is None else {"logprobs": tokens_json(tokens)}
