"""A chat answer as a producer: the server runs it on a worker thread and forwards each item as it comes."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .types import ChatEnd

ChatItem = str | ChatEnd
"""A text delta, or how the answer ended (the last item)."""
Emit = Callable[[ChatItem], None]
Produce = Callable[[Emit, threading.Event], None]


class ChatStream:
    """A checked request whose audio is decoded. ``produce(emit, stopped)`` runs the model once, on the calling
    thread: it emits text deltas (``str``) as they are written, then one :class:`ChatEnd`. Setting ``stopped``
    (the reader has gone, or its time is up) stops the model at its next token. Model errors (busy, unavailable)
    are raised before the first item."""

    def __init__(self, model_id: str, produce: Produce) -> None:
        self.model_id = model_id
        self._produce: Produce | None = produce

    def produce(self, emit: Emit, stopped: threading.Event) -> None:
        produce, self._produce = self._produce, None
        if produce is None:
            raise RuntimeError("the stream was already produced")
        produce(emit, stopped)
