"""One skeleton for every server-sent-event stream (``stream=true`` on ``/v1/audio/transcriptions`` and
``/v1/chat/completions``): a route says how its items are produced and written as events (an
:class:`EventSource`); :func:`event_stream` does the rest once, the same for every route.

The first item is read before answering, so a busy or missing model, or a request past its deadline, still gets a
plain error response. After that an error is an ``{"error": ...}`` event that ends the stream, as OpenAI sends
(the official SDKs raise it). The request's deadline (``request_timeout_s``) is the non-streamed requests' one.
Every stream is metered once: success, failure, or a client that left before the end.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
from sse_starlette import EventSourceResponse

from core.errors import STTError

from .edge.disconnect import Deadline
from .edge.errors import OPENAI_FIELDS, body_of
from .observability.metering import RequestMeter
from .streaming import Emit, produced_in_thread

T = TypeVar("T")
Payload = dict[str, Any]
PING_S = 15
"""A comment every 15 s keeps proxies from closing a stream that is waiting for its next item."""
_NO_ITEM = object()


@dataclass(frozen=True)
class StreamEnd:
    """The events that close a stream that went well, and what the meter records of it."""

    events: Sequence[Payload]
    audio_seconds: float
    processing_s: float
    text: str


class EventSource(ABC, Generic[T]):
    """One route's stream: the producer of its items (run on a worker thread) and the events that carry them."""

    done_marker: str | None = None
    """The data of the last event of a stream that went well (``[DONE]``), if the route sends one."""

    @abstractmethod
    def produce(self, emit: Emit[T], stopped: threading.Event) -> None:
        """Blocking: ``emit`` each item as it comes; stop early once ``stopped`` is set."""

    def opening(self) -> Iterable[Payload]:
        """The events before the first item's."""
        return ()

    @abstractmethod
    def events(self, item: T) -> Iterable[Payload]:
        """The events that carry one item."""

    @abstractmethod
    def closing(self) -> StreamEnd:
        """Once every item is written."""

    def unexpected_error(self) -> Payload | None:
        """The event for a failure that is not a domain error, after the stream started (called while it is
        being handled); None lets it propagate, which cuts the connection."""
        return None


async def event_stream(
    open_source: Callable[[], EventSource[T]], meter: RequestMeter, timeout_s: float
) -> EventSourceResponse:
    """The streamed answer to a request. ``open_source()`` checks the request and decodes its audio (on a worker
    thread); errors until the first item is produced are raised here, for the route's error handlers."""
    deadline = Deadline(timeout_s)
    source = await anyio.to_thread.run_sync(open_source)
    items = produced_in_thread(source.produce, deadline)
    first: object = _NO_ITEM
    try:
        first = await anext(items)
    except StopAsyncIteration:
        pass
    return EventSourceResponse(_written(source, first, items, meter), ping=PING_S)


async def _written(
    source: EventSource[T], first: object, items: AsyncGenerator[T, None], meter: RequestMeter
) -> AsyncIterator[dict[str, str]]:
    try:
        for payload in source.opening():
            yield _data(payload)
        if first is not _NO_ITEM:
            for payload in source.events(first):  # type: ignore[arg-type]
                yield _data(payload)
            async for item in items:
                for payload in source.events(item):
                    yield _data(payload)
        end = source.closing()
        for payload in end.events:
            yield _data(payload)
        meter.succeeded(end.audio_seconds, end.processing_s, end.text)
        if source.done_marker is not None:
            yield {"data": source.done_marker}
    except STTError as exc:  # a later clip, the diarizer, the deadline: an error event ends the stream
        meter.failed_with(exc)
        yield _data(body_of(exc, OPENAI_FIELDS))
    except Exception:
        if (payload := source.unexpected_error()) is None:
            raise
        meter.failed(500, "internal_error")
        yield _data(payload)
    finally:
        meter.abandoned()
        await items.aclose()


def _data(payload: Payload) -> dict[str, str]:
    return {"data": json.dumps(payload)}
