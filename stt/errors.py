"""Errors a client can cause or see, rendered as OpenAI's error body."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class APIError(Exception):
    """An error with an HTTP status and the OpenAI error body ``{"error": {...}}``."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    error_type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.param, self.code)


class AuthenticationError(APIError):
    status = HTTPStatus.UNAUTHORIZED
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class InvalidRequestError(APIError):
    status = HTTPStatus.BAD_REQUEST
    error_type = "invalid_request_error"
    code = "invalid_value"


class ModelNotFoundError(APIError):
    status = HTTPStatus.NOT_FOUND
    error_type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLargeError(APIError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    error_type = "invalid_request_error"
    code = "payload_too_large"


class UnsupportedAudioError(APIError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    error_type = "invalid_request_error"
    code = "unsupported_audio"


class ModelBusyError(APIError):
    status = HTTPStatus.CONFLICT
    error_type = "invalid_request_error"
    code = "model_busy"


class RateLimitedError(APIError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class ModelUnavailableError(APIError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    error_type = "server_error"
    code = "model_unavailable"


def error_response(exc: APIError, headers: dict[str, str] | None = None):
    """The HTTP response for an :class:`APIError` (also an ASGI app, for middlewares)."""
    from starlette.responses import JSONResponse

    return JSONResponse(exc.body(), status_code=int(exc.status), headers=headers)


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """The message and the parameter named by the first of pydantic's validation errors."""
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = location[0] if location else None
    if param is None:
        return f"Invalid request: {first.get('msg', 'invalid input')}", None
    if first.get("type") == "missing":
        return f"Missing required parameter: '{param}'.", param
    return f"Invalid value for '{param}': {first.get('msg', 'invalid input')}", param


def error_body(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
