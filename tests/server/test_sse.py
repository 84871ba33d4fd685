"""The one skeleton of every server-sent-event stream, on a stand-in source and meter (no model, no HTTP): the
first item before answering, items as ``data:`` events, an error event after the start, the request deadline,
a client that leaves, and one outcome metered for each stream."""

from __future__ import annotations

import json
import threading

import anyio
import pytest

from core.errors import ModelBusyError, ModelUnavailableError, RequestTimedOut, UnsupportedAudioError
from server.edge.errors import OPENAI_AUDIO_STATUSES
from server.observability.metering import RequestMeter
from server.sse import EventSource, StreamEnd, event_stream

WAIT = object()
"""In a script: the producer waits until it is stopped (at most 5 s), then returns."""


class Source(EventSource[str]):
    """Produces its script: strings are emitted, exceptions raised, ``WAIT`` waits to be stopped."""

    def __init__(self, *script: object, done_marker: str | None = None, unexpected: dict | None = None) -> None:
        self.script = script
        self.done_marker = done_marker
        self.unexpected = unexpected
        self.written: list[str] = []
        self.stopped = threading.Event()
        """Set when the producer saw that it was stopped."""

    def produce(self, emit, stopped: threading.Event) -> None:
        for step in self.script:
            if isinstance(step, BaseException):
                raise step
            if step is WAIT:
                if stopped.wait(5):
                    self.stopped.set()
                return
            emit(step)

    def opening(self) -> list[dict]:
        return [{"opening": True}]

    def events(self, item: str) -> list[dict]:
        self.written.append(item)
        return [{"item": item}]

    def closing(self) -> StreamEnd:
        text = "".join(self.written)
        return StreamEnd([{"closing": text}], 2.0, 0.5, text)

    def unexpected_error(self) -> dict | None:
        return self.unexpected


class Meter(RequestMeter):
    """Keeps the outcomes instead of counting and logging them."""

    def __init__(self, statuses=OPENAI_AUDIO_STATUSES) -> None:
        super().__init__("asr", log_transcripts=False, statuses=statuses)
        self.outcomes: list[tuple] = []

    def succeeded(self, audio_seconds: float, processing_seconds: float, text: str | None = None) -> None:
        self.finished = True
        self.outcomes.append((200, audio_seconds, processing_seconds, text))

    def failed(self, status: int, code: str) -> None:
        self.finished = True
        self.outcomes.append((status, code))


def stream(source: Source, meter: Meter, timeout_s: float = 30.0, leave_after: int | None = None) -> list:
    """The events' data as a client reads them; with ``leave_after``, the client leaves after that many."""

    async def main() -> list:
        response = await event_stream(lambda: source, meter, timeout_s)
        assert response.ping_interval == 15
        read: list = []
        async for event in response.body_iterator:
            read.append(event["data"] if event["data"] == "[DONE]" else json.loads(event["data"]))
            if len(read) == leave_after:
                break
        await response.body_iterator.aclose()  # as the server does when the client disconnects
        return read

    return anyio.run(main)


def test_the_items_events_between_the_opening_and_the_closing_then_the_done_marker():
    meter = Meter()
    events = stream(Source("a", "b", done_marker="[DONE]"), meter)
    assert events == [{"opening": True}, {"item": "a"}, {"item": "b"}, {"closing": "ab"}, "[DONE]"]
    assert meter.outcomes == [(200, 2.0, 0.5, "ab")]


def test_a_stream_with_no_items_still_opens_and_closes():
    meter = Meter()
    assert stream(Source(), meter) == [{"opening": True}, {"closing": ""}]
    assert meter.outcomes == [(200, 2.0, 0.5, "")]


def test_an_error_before_the_first_item_is_raised_for_a_plain_error_response():
    """A busy or missing model: the route's handlers answer it with its status (and ``metered`` counts it)."""
    meter = Meter()
    with pytest.raises(ModelBusyError):
        stream(Source(ModelBusyError("busy", input="model")), meter)

    def refused() -> Source:  # the request is checked as the stream opens
        raise ModelUnavailableError("gone")

    with pytest.raises(ModelUnavailableError):
        anyio.run(event_stream, refused, meter, 30.0)
    assert meter.outcomes == []


def test_an_error_after_the_start_is_an_error_event_that_ends_the_stream():
    meter = Meter()
    events = stream(Source("a", UnsupportedAudioError("The diarizer cannot read it.", input="diarize"), "b"), meter)
    error = {"message": "The diarizer cannot read it.", "type": "invalid_request_error", "param": "response_format",
             "code": "unsupported_audio"}
    assert events == [{"opening": True}, {"item": "a"}, {"error": error}]
    assert meter.outcomes == [(400, "unsupported_audio")]  # the route's statuses: /v1/audio answers 400


def test_an_unexpected_error_after_the_start_is_the_sources_event_or_cuts_the_stream():
    meter = Meter()
    event = {"error": {"message": "The model failed.", "type": "server_error", "param": None, "code": "internal_error"}}
    assert stream(Source("a", RuntimeError("bug"), unexpected=event), meter)[-1] == event
    assert meter.outcomes == [(500, "internal_error")]
    cut = Meter()
    with pytest.raises(RuntimeError, match="bug"):
        stream(Source("a", RuntimeError("bug")), cut)
    assert cut.outcomes == [(499, "client_closed_request")]


def test_past_the_deadline_before_the_first_item_the_request_fails_as_non_streamed_ones_do():
    source = Source(WAIT)
    with pytest.raises(RequestTimedOut) as error:
        stream(source, Meter(), timeout_s=0.2)
    assert (error.value.message, error.value.input, error.value.code) == (
        "The request did not finish within 0.2 seconds.", "file", "timeout"
    )
    assert source.stopped.wait(5)


def test_past_the_deadline_after_the_start_an_error_event_ends_the_stream_and_stops_the_producer():
    meter = Meter()
    source = Source("a", WAIT, "never", done_marker="[DONE]")
    events = stream(source, meter, timeout_s=0.3)
    error = {"message": "The request did not finish within 0.3 seconds.", "type": "server_error", "param": "file",
             "code": "timeout"}
    assert events == [{"opening": True}, {"item": "a"}, {"error": error}]
    assert meter.outcomes == [(504, "timeout")] and source.stopped.wait(5)


def test_a_client_that_leaves_stops_the_producer_and_is_metered_as_gone():
    meter = Meter()
    source = Source("a", WAIT, "never")
    assert stream(source, meter, leave_after=2) == [{"opening": True}, {"item": "a"}]
    assert source.stopped.wait(5)
    assert meter.outcomes == [(499, "client_closed_request")]
