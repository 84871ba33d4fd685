"""Rewrites BentoML's own error bodies (input validation, internal errors) into OpenAI's error shape,
so every route answers errors as ``{"error": {"message", "type", "param", "code"}}``; and gives every 429 and 503 that
says nothing of when to retry (BentoML's ``/readyz`` while the models load, anything raised as a bare HTTP status) a
``Retry-After``."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import DEFAULT_RETRY_AFTER_S, error_body, validation_message

_RETRY_STATUSES = (429, 503)


class OpenAIErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    await send(message)
                else:
                    start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                await _send_rewritten(send, start, bytes(body))

        await self.app(scope, receive, capture)


async def _send_rewritten(send: Send, start: Message, body: bytes) -> None:
    status = start["status"]
    new_body = openai_error_from(status, body)
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
    if new_body is None:
        new_body = body
        headers = list(start.get("headers", []))
    else:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(new_body)).encode())]
    await send({**start, "headers": with_retry_after(status, headers)})
    await send({"type": "http.response.body", "body": new_body, "more_body": False})


def with_retry_after(status: int, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers, with a ``Retry-After`` on a 429 or 503 that has none."""
    if status not in _RETRY_STATUSES or any(name.lower() == b"retry-after" for name, _ in headers):
        return headers
    return [*headers, (b"retry-after", str(math.ceil(DEFAULT_RETRY_AFTER_S)).encode())]


def openai_error_from(status: int, body: bytes) -> bytes | None:
    """The OpenAI-shaped body for a non-OpenAI error body; None when it already has that shape."""
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        data = body.decode("utf-8", "replace").strip() or None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return None
    if isinstance(data, list) and len(data) == 1:  # BentoML wraps some 4xx bodies in a list
        data = data[0]
    message, param = _message_and_param(status, data)
    error_type = "invalid_request_error" if status < 500 else "server_error"
    code = "invalid_value" if status in (400, 422) else None
    return json.dumps(error_body(message, error_type, param, code)).encode()


def _message_and_param(status: int, data: Any) -> tuple[str, str | None]:
    if isinstance(data, dict):
        details = data.get("detail")
        if isinstance(details, list) and details and isinstance(details[0], dict):
            return validation_message(details)
        if isinstance(data.get("error"), str):
            return data["error"], None
    if isinstance(data, str):
        return data, None
    return ("Internal server error." if status >= 500 else f"Request failed with status {status}."), None
