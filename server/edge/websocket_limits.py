"""The largest WebSocket message the server reads, set where it is enforced: in uvicorn, which BentoML runs.

uvicorn reads a whole message before the app sees it, up to its ``ws_max_size`` (16 MiB by default), and BentoML
gives no way to set that. So a client could make the server hold a 16 MiB message, its decoded text and the app's
parse of it, again and again, when no realtime event needs more than a few MiB (one append carries at most
``STT_REALTIME_AUDIO_BURST_S`` of audio: 30 s of 24 kHz PCM is 1.9 MB of base64). ``limit_websocket_messages``
makes the bound the service's: uvicorn's parser then refuses a bigger frame from its header, before reading its
payload, and closes the socket with 1009 (message too big).

The service calls it when its module is imported, which BentoML's worker does before it builds uvicorn's
configuration.
"""

from __future__ import annotations

import functools
from typing import Any

_LIMIT_ATTRIBUTE = "_stt_ws_max_size"


def limit_websocket_messages(max_bytes: int) -> None:
    """Make ``max_bytes`` the default ``ws_max_size`` of every ``uvicorn.Config`` built from now on (one that names
    its own keeps it)."""
    import uvicorn.config

    init = uvicorn.config.Config.__init__
    original = getattr(init, "__wrapped__", init) if hasattr(init, _LIMIT_ATTRIBUTE) else init

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("ws_max_size", max_bytes)
        original(self, *args, **kwargs)

    setattr(__init__, _LIMIT_ATTRIBUTE, max_bytes)
    uvicorn.config.Config.__init__ = __init__  # type: ignore[method-assign]
