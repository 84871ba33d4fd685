"""Domain errors as HTTP: each kind's status and OpenAI error type, rendered as OpenAI's error body
``{"error": {"message", "type", "param", "code"}}`` with the route's own field names."""

from __future__ import annotations

import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

from core.errors import ErrorKind, STTError

_STATUS_AND_TYPE: dict[ErrorKind, tuple[HTTPStatus, str]] = {
    ErrorKind.INVALID_INPUT: (HTTPStatus.BAD_REQUEST, "invalid_request_error"),
    ErrorKind.NOT_FOUND: (HTTPStatus.NOT_FOUND, "invalid_request_error"),
    ErrorKind.TOO_LARGE: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "invalid_request_error"),
    ErrorKind.UNSUPPORTED_MEDIA: (HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "invalid_request_error"),
    ErrorKind.CONFLICT: (HTTPStatus.CONFLICT, "invalid_request_error"),
    ErrorKind.OVERLOADED: (HTTPStatus.TOO_MANY_REQUESTS, "rate_limit_error"),
    ErrorKind.UNAVAILABLE: (HTTPStatus.SERVICE_UNAVAILABLE, "server_error"),
    # nginx's status for a client that closed the connection: nobody reads it, the logs and metrics do.
    ErrorKind.CANCELLED: (499, "invalid_request_error"),
    ErrorKind.TIMED_OUT: (HTTPStatus.GATEWAY_TIMEOUT, "server_error"),
}

OPENAI_FIELDS: Mapping[str, str] = {"diarize": "response_format", "token_logprobs": "include"}
"""Domain input names that ``/v1`` carries in another field (diarization is asked for by the format, token
log-probabilities by ``include[]``)."""
TRANSCRIBE_FIELDS: Mapping[str, str] = {"model": "model_id"}
"""The same for ``/transcribe``."""
OPENAI_AUDIO_STATUSES: Mapping[ErrorKind, int] = {ErrorKind.UNSUPPORTED_MEDIA: HTTPStatus.BAD_REQUEST}
"""Statuses the ``/v1`` routes that take audio (``/v1/audio/*``, ``/v1/chat/completions``) answer differently:
OpenAI answers audio it cannot read with 400 ``invalid_request_error`` (the SDKs' ``BadRequestError``), where
``/transcribe`` says 415."""


def status_of(exc: STTError, statuses: Mapping[ErrorKind, int] = {}) -> int:
    return int(statuses.get(exc.kind, _STATUS_AND_TYPE[exc.kind][0]))


def error_body(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def body_of(exc: STTError, fields: Mapping[str, str] = {}) -> dict[str, Any]:
    _, error_type = _STATUS_AND_TYPE[exc.kind]
    param = fields.get(exc.input, exc.input) if exc.input else None
    return error_body(exc.message, error_type, param, exc.code)


DEFAULT_RETRY_AFTER_S = 1.0
"""What a 429 or 503 tells the client to wait when the error does not know better."""


def retry_after_header(exc: STTError, status: int) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) for an error the same request may get past by waiting: every 429
    and 503 carries one."""
    if exc.retry_after_s is None and status not in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
        return {}
    seconds = exc.retry_after_s if exc.retry_after_s is not None else DEFAULT_RETRY_AFTER_S
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def error_response(
    exc: STTError,
    fields: Mapping[str, str] = {},
    headers: dict[str, str] | None = None,
    statuses: Mapping[ErrorKind, int] = {},
) -> JSONResponse:
    """The HTTP response for a domain error (also an ASGI app, for middlewares)."""
    status = status_of(exc, statuses)
    return JSONResponse(
        body_of(exc, fields), status_code=status, headers={**retry_after_header(exc, status), **(headers or {})}
    )


def http_error_response(
    status: int, message: str, error_type: str, code: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error that only exists at the HTTP edge (a missing API key, an oversized body)."""
    return JSONResponse(error_body(message, error_type, param, code), status_code=status, headers=headers)


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """The message and the parameter named by the first of pydantic's validation errors."""
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = location[0] if location else None
    if first.get("type") == "json_invalid":  # FastAPI's location is a character offset, not a parameter
        reason = (first.get("ctx") or {}).get("error") or first.get("msg", "invalid JSON")
        return f"The JSON is not valid: {reason}.", None
    if param is None:
        return f"Invalid request: {first.get('msg', 'invalid input')}", None
    if first.get("type") == "missing":
        return f"Missing required parameter: '{param}'.", param
    return f"Invalid value for '{param}': {first.get('msg', 'invalid input')}", param
