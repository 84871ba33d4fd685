"""Rejects uploads over the size limit with 413, before the body is buffered.

BentoML has no request-size limit and reads a whole upload into memory, so the limit is enforced
here: from ``Content-Length`` before a byte of the body is read, and by counting bytes as they
arrive when the client sends no length (chunked transfer).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import http_error_response


class UploadLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(scope, receive, send)
            return

        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}  # the app stops reading; we answer below
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # whatever the app says about the cut-off body, the answer is 413
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not response_started:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit_mib = self.max_bytes / 2**20
        response = http_error_response(
            413,
            f"The upload is larger than the limit of {limit_mib:g} MiB.",
            "invalid_request_error",
            "payload_too_large",
            param=_body_param(scope["path"]),
            # The body is left unread: closing the connection keeps the client from sending the rest.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _body_param(path: str) -> str:
    """The request field the body carries: chat requests carry their audio in ``messages``, uploads in ``file``."""
    return "messages" if path.rstrip("/").endswith("/chat/completions") else "file"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
