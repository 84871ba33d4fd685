"""``stream=true`` on ``/v1/audio/transcriptions``: ``transcript.text.delta`` events as segments are decoded; with
speakers (``diarized_json``), then one ``transcript.text.segment`` per speaker turn once the diarizer has heard the
whole file; then ``transcript.text.done``."""

from __future__ import annotations

import threading
import time
from typing import Any, BinaryIO

from starlette.responses import Response

from core.types import DiarizeOptions, Segment, TranscribeOptions
from pipeline.transcriber import Transcriber, TranscriptionStream

from pipeline.response_formats import diarized_segments, logprobs_of, token_usage
from ..observability.metering import RequestMeter
from ..sse import EventSource, Payload, StreamEnd, event_stream
from ..streaming import Emit


async def transcription_stream(
    transcriber: Transcriber,
    meter: RequestMeter,
    file: BinaryIO,
    model_id: str | None,
    options: TranscribeOptions,
    speakers: DiarizeOptions | None,
    timeout_s: float,
) -> Response:
    def open_source() -> _TranscriptEvents:
        return _TranscriptEvents(transcriber.open_stream(file, model_id, options, speakers), options)

    return await event_stream(open_source, meter, timeout_s)


class _TranscriptEvents(EventSource[Segment]):
    def __init__(self, stream: TranscriptionStream, options: TranscribeOptions) -> None:
        self.stream = stream
        self.options = options
        self.decoded: list[Segment] = []
        self.started = time.perf_counter()

    def produce(self, emit: Emit[Segment], stopped: threading.Event) -> None:
        segments = self.stream.segments()
        try:
            for segment in segments:
                if stopped.is_set():
                    break
                emit(segment)
        finally:
            segments.close()  # on the thread that leased the model: the lease is let go where it was taken

    def events(self, item: Segment) -> list[Payload]:
        self.decoded.append(item)
        return [_delta(item, self.options)]

    def closing(self) -> StreamEnd:
        text = "".join(segment.text for segment in self.decoded).strip()
        done: dict[str, Any] = {"type": "transcript.text.done", "text": text}
        if self.options.logprobs:
            done["logprobs"] = logprobs_of(self.decoded)
        if (usage := token_usage(self.stream.duration, self.decoded)) is not None:
            done["usage"] = usage
        turns = diarized_segments(self.stream.speaker_segments or [])
        return StreamEnd([*turns, done], self.stream.duration, time.perf_counter() - self.started, text)


def _delta(segment: Segment, options: TranscribeOptions) -> Payload:
    """``transcript.text.delta`` (with the segment's tokens' ``logprobs`` when asked for), with the segment's
    ``start`` and ``end`` (and ``words``, with word timestamps) as extensions: what a client needs to show timed
    segments and progress while the transcript streams in."""
    event: dict[str, Any] = {
        "type": "transcript.text.delta", "delta": segment.text, "start": segment.start, "end": segment.end
    }
    if options.logprobs:
        event["logprobs"] = logprobs_of([segment])
    if options.word_timestamps and segment.words:
        event["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end} for w in segment.words]
    return event
