"""Errors that a request can cause, in domain terms: a kind, a message and the input at fault.

Nothing here knows HTTP. The server layer maps each kind to a status and each input name to the
field that carried it on its route (``model`` is ``model_id`` on ``/transcribe`` and ``model`` on ``/v1``).
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    INVALID_INPUT = "invalid_input"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA = "unsupported_media"
    CONFLICT = "conflict"
    OVERLOADED = "overloaded"
    UNAVAILABLE = "unavailable"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class STTError(Exception):
    """A failure the client should hear about. ``input`` names the offending request input, if any
    (``model``, ``file``, ``language``, ``diarize``, ``num_speakers``, ...). ``retry_after_s``: when the same request
    may succeed if tried again (an overloaded or unavailable server), how long to wait first."""

    kind: ErrorKind = ErrorKind.INVALID_INPUT
    code: str = "invalid_value"

    def __init__(
        self, message: str, *, input: str | None = None, code: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.input = input
        self.retry_after_s = retry_after_s
        if code is not None:
            self.code = code


class InvalidInputError(STTError):
    kind = ErrorKind.INVALID_INPUT
    code = "invalid_value"


class ModelNotFoundError(STTError):
    kind = ErrorKind.NOT_FOUND
    code = "model_not_found"


class TooLargeError(STTError):
    kind = ErrorKind.TOO_LARGE
    code = "payload_too_large"


class UnsupportedAudioError(STTError):
    kind = ErrorKind.UNSUPPORTED_MEDIA
    code = "unsupported_audio"


class ModelBusyError(STTError):
    kind = ErrorKind.CONFLICT
    code = "model_busy"


class OverloadedError(STTError):
    kind = ErrorKind.OVERLOADED
    code = "rate_limit_exceeded"


class ModelUnavailableError(STTError):
    kind = ErrorKind.UNAVAILABLE
    code = "model_unavailable"


class RequestCancelled(STTError):
    """The client has gone: the request's remaining work is dropped."""

    kind = ErrorKind.CANCELLED
    code = "client_closed_request"


class RequestTimedOut(STTError):
    """The request ran past its deadline: its remaining work was dropped."""

    kind = ErrorKind.TIMED_OUT
    code = "timeout"
