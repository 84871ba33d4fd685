"""Optional API keys: ``Authorization: Bearer <key>`` (what the OpenAI SDK sends) on every route but health."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import http_error_response

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})


class ApiKeyMiddleware:
    """Refuses requests without a valid key with 401. With no keys configured, it lets everything through."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys if key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"].rstrip("/") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self._authorized(_bearer_token(scope)):
            await self.app(scope, receive, send)
            return
        response = http_error_response(
            401,
            "Incorrect or missing API key: send 'Authorization: Bearer <key>'.",
            "invalid_request_error",
            "invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)

    def _authorized(self, token: bytes | None) -> bool:
        if token is None:
            return False
        # Compare against every key, always, so timing reveals neither a match nor which key.
        matches = [hmac.compare_digest(token, key) for key in self.keys]
        return any(matches)


def _bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
    return None
