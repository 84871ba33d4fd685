"""Answers by transcription models (Whisper and the like): the transcript of the audio parts of the last user
message, in order; that message's text parts are the transcription prompt. Earlier messages, system messages and
sampling settings other than the temperature do not apply."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable, Sequence

from core.errors import InvalidInputError
from core.registry import ModelSpec
from core.types import Transcription, TranscribeOptions

from ..preparation import check_prompt
from ..transcriber import Transcriber, TranscriptionStream
from .limits import AudioAllowance
from .part_errors import naming_the_part
from .stop_scanner import StopScanner
from .stream import ChatStream, Emit
from .types import ChatEnd, ChatMessage, ChatRequest, ChatResult, ChatUsage


def transcript_answer(
    transcriber: Transcriber,
    spec: ModelSpec,
    request: ChatRequest,
    cancelled: threading.Event | None,
    allowance: AudioAllowance,
) -> ChatResult:
    """The whole transcript, part by part while the parts' audio is within ``allowance``; setting ``cancelled`` drops
    what is not decoded yet."""
    message, prompt = _transcription_input(spec, request)
    options = _transcribe_options(prompt, request)
    transcriptions: list[Transcription] = []
    processing_s = 0.0
    for audio in message.audio:
        with naming_the_part(audio.input):
            result = transcriber.transcribe(io.BytesIO(audio.data), spec.id, options, cancelled=cancelled)
        allowance.add(result.transcription.duration)
        transcriptions.append(result.transcription)
        processing_s += result.processing_s
    scanner = StopScanner(request.stop)
    text = scanner.feed(_joined(t.text for t in transcriptions)) + scanner.flush()
    end = ChatEnd(
        "stop",
        ChatUsage(0, sum(_token_count(t.text, [len(s.tokens) for s in t.segments]) for t in transcriptions)),
        sum(t.duration for t in transcriptions),
        processing_s,
    )
    return ChatResult(spec.id, text, end)


def transcript_stream(
    transcriber: Transcriber, spec: ModelSpec, request: ChatRequest, allowance: AudioAllowance
) -> ChatStream:
    """Every audio part checked and decoded now (within ``allowance``); the transcript is produced segment by
    segment."""
    message, prompt = _transcription_input(spec, request)
    streams = []
    for audio in message.audio:
        with naming_the_part(audio.input):
            source = io.BytesIO(audio.data)
            streams.append(transcriber.open_stream(source, spec.id, _transcribe_options(prompt, request)))
        allowance.add(streams[-1].duration)
    return ChatStream(spec.id, lambda emit, stopped: _produce(streams, request.stop, emit, stopped))


def _produce(streams: list[TranscriptionStream], stops: Sequence[str], emit: Emit, stopped: threading.Event) -> None:
    scanner = StopScanner(stops)
    started = time.perf_counter()
    tokens = 0
    first = True
    for stream in streams:
        segments = stream.segments()
        try:
            for segment in segments:
                if stopped.is_set():
                    return
                text = segment.text.strip()
                if not text:
                    continue
                tokens += _token_count(text, [len(segment.tokens)])
                delta = scanner.feed(text if first else " " + text)
                first = False
                if delta:
                    emit(delta)
                if scanner.stopped:
                    break
        finally:
            segments.close()  # the model's lease is let go at once
        if scanner.stopped:
            break
    if tail := scanner.flush():
        emit(tail)
    seconds = sum(stream.duration for stream in streams)
    emit(ChatEnd("stop", ChatUsage(0, tokens), seconds, time.perf_counter() - started))


def _transcription_input(spec: ModelSpec, request: ChatRequest) -> tuple[ChatMessage, str | None]:
    """The last user message, which must hold audio, and its text as the transcription prompt (within the prompt's
    bounds, naming the message)."""
    index, message = next(
        ((i, m) for i, m in reversed(list(enumerate(request.messages))) if m.role == "user"), (None, None)
    )
    if message is None or not message.audio:
        raise InvalidInputError(
            f"The model {spec.id!r} is a transcription model: it answers with the transcript of the audio in the "
            "last user message, and that message has no audio (send an input_audio part).",
            input="messages",
            code="missing_audio",
        )
    if request.temperature is not None and request.temperature > 1:
        raise InvalidInputError(
            f"The model {spec.id!r} is a transcription model: its temperature must be between 0 and 1.",
            input="temperature",
        )
    prompt = message.text.strip() or None
    check_prompt(prompt, f"messages.[{index}].content")
    return message, prompt


def _transcribe_options(prompt: str | None, request: ChatRequest) -> TranscribeOptions:
    return TranscribeOptions(initial_prompt=prompt, temperature=request.temperature)


def _joined(texts: Iterable[str]) -> str:
    return " ".join(text.strip() for text in texts if text.strip())


def _token_count(text: str, segment_tokens: Sequence[int]) -> int:
    """Tokens the transcription model wrote: its own count where the engine reports one, else the words."""
    return sum(segment_tokens) or len(text.split())
