"""Optional API keys: ``Authorization: Bearer <key>`` (what the OpenAI SDK sends) on every route but health.

WebSockets (``/v1/realtime``) take the same header, or, for browsers that cannot set headers, the key as the
``openai-insecure-api-key.<key>`` subprotocol, as OpenAI's Realtime API does."""

from __future__ import annotations

import hashlib
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import http_error_response
from ..web.page import is_public as is_public_page

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
KEY_SUBPROTOCOL = "openai-insecure-api-key."
KEY_NAME_SCOPE = "stt.api_key_name"
"""Where an authorized request's scope names its key, for limits per key: ``key-<n>``, the key's place in the list,
never the key itself. Absent when no keys are configured."""
KEY_ID_SCOPE = "stt.api_key_id"
"""Where an authorized request's scope holds a digest of its key (SHA-256, 32 hex digits): what files and batches
are owned by, the same on every replica and whatever the key's place in the list. Absent without keys."""


class ApiKeyMiddleware:
    """Refuses requests without a valid key with 401. With no keys configured, it lets everything through."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys if key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.keys or _is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = _bearer_token(scope)
        if token is None and scope["type"] == "websocket":
            token = _subprotocol_token(scope)
        key_number = self._key_number(token)
        if key_number is not None:
            scope[KEY_NAME_SCOPE] = f"key-{key_number}"
            scope[KEY_ID_SCOPE] = key_digest(self.keys[key_number])
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})  # the server answers the handshake with 403
            return
        response = http_error_response(
            401,
            "Incorrect or missing API key: send 'Authorization: Bearer <key>'.",
            "invalid_request_error",
            "invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)

    def _key_number(self, token: bytes | None) -> int | None:
        """The place in the list of the key ``token`` is; None when it is none of them."""
        if token is None:
            return None
        # Compare against every key, always, so timing reveals neither a match nor which key.
        matches = [hmac.compare_digest(token, key) for key in self.keys]
        return matches.index(True) if any(matches) else None


def key_digest(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:32]


def open_access_warning(keys: list[str]) -> str | None:
    """What the service says at start when no API keys are set; None when they are."""
    if keys:
        return None
    return (
        "No API keys are set (STT_API_KEYS): every route is open to whoever can reach this server. `make serve` "
        "listens on 127.0.0.1 only unless HOST is set; set STT_API_KEYS before serving on a network."
    )


def _is_open(path: str) -> bool:
    """Health checks, and the web page with its static files (the API calls the page makes need a key)."""
    return path.rstrip("/") in OPEN_PATHS or is_public_page(path)


def _subprotocol_token(scope: Scope) -> bytes | None:
    for protocol in scope.get("subprotocols", []):
        if protocol.startswith(KEY_SUBPROTOCOL) and len(protocol) > len(KEY_SUBPROTOCOL):
            return protocol[len(KEY_SUBPROTOCOL) :].encode()
    return None


def _bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
    return None
