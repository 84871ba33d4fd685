"""Which web pages may open the realtime socket: a browser names the page's origin in the handshake's ``Origin``
header, so a page elsewhere cannot drive this server through a visitor's browser (a WebSocket is not bound by
CORS). Allowed: clients that send no ``Origin`` (SDKs, curl: not browsers), pages of the server's own origin (the
web page), pages on localhost, and the operator's list (``STT_REALTIME_ALLOWED_ORIGINS``; ``*``: any)."""

from __future__ import annotations

from urllib.parse import urlsplit

ANY_ORIGIN = "*"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def allowed_origins(setting: str) -> tuple[str, ...]:
    """The comma-separated setting as origins to compare with (``scheme://host[:port]``, lower case)."""
    return tuple(_normal(part) for part in setting.split(",") if part.strip())


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a handshake with this ``Origin`` (None: no header) to this ``Host`` may open the socket."""
    if origin is None or ANY_ORIGIN in allowed or _normal(origin) in allowed:
        return True
    try:
        page = urlsplit(origin.strip().lower())
        page_port = page.port or _DEFAULT_PORTS.get(page.scheme)
    except ValueError:
        return False
    if page.scheme not in _DEFAULT_PORTS or not page.hostname:
        return False  # "null" (a file or a sandboxed frame) and anything that is not a web page
    if page.hostname in LOCAL_HOSTS or page.hostname.endswith(".localhost"):
        return True
    if not host:
        return False
    try:
        served = urlsplit(f"{page.scheme}://{host.strip().lower()}")
        served_port = served.port or _DEFAULT_PORTS[page.scheme]
    except ValueError:
        return False
    return (served.hostname, served_port) == (page.hostname, page_port)


def _normal(origin: str) -> str:
    return origin.strip().rstrip("/").lower()
