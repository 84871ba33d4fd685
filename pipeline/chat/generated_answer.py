"""Answers by chat models (engine ``speech_llm``): the model reads the whole conversation, system messages and
history included, with each message's audio decoded to 16 kHz mono where it stands, and writes the next message."""

from __future__ import annotations

import io
import threading
import time

import numpy as np

from core.audio import SAMPLE_RATE
from core.devices import release_memory
from core.errors import InvalidInputError, RequestCancelled
from core.registry import ModelSpec
from strategies.base import ChatEngine, ChatTurn, GenerationOptions

from ..pool import ModelLease, ModelPool
from ..transcriber import Transcriber
from .limits import AudioAllowance
from .part_errors import naming_the_part
from .stop_scanner import StopScanner
from .stream import ChatItem, ChatStream, Emit
from .types import ChatEnd, ChatRequest, ChatResult, ChatUsage, FinishReason


def generated_answer(
    transcriber: Transcriber,
    spec: ModelSpec,
    request: ChatRequest,
    cancelled: threading.Event | None,
    allowance: AudioAllowance,
) -> ChatResult:
    """The whole answer, written on this thread. Setting ``cancelled`` stops the model and fails the request."""
    items: list[ChatItem] = []
    generated_stream(transcriber, spec, request, allowance).produce(items.append, cancelled or threading.Event())
    end = items.pop()
    assert isinstance(end, ChatEnd)
    return ChatResult(spec.id, "".join(item for item in items if isinstance(item, str)), end)


def generated_stream(
    transcriber: Transcriber, spec: ModelSpec, request: ChatRequest, allowance: AudioAllowance
) -> ChatStream:
    """The conversation decoded now (its audio within ``allowance``); the model runs when the stream is produced."""
    turns, audio_seconds = _decoded_turns(transcriber, request, allowance)
    options = GenerationOptions(
        max_new_tokens=request.max_tokens, temperature=request.temperature, top_p=request.top_p, seed=request.seed
    )

    def produce(emit: Emit, stopped: threading.Event) -> None:
        _generate(transcriber.pool, spec, turns, options, request, audio_seconds, emit, stopped)

    return ChatStream(spec.id, produce)


def _generate(
    pool: ModelPool,
    spec: ModelSpec,
    turns: list[ChatTurn],
    options: GenerationOptions,
    request: ChatRequest,
    audio_seconds: float,
    emit: Emit,
    stopped: threading.Event,
) -> None:
    """The model's text as it writes it, cut at the stop strings, then how it ended. A stop string stops the
    model at its next token, and so does ``stopped``, which fails the answer."""
    scanner = StopScanner(request.stop)
    started = time.perf_counter()

    def on_text(text: str) -> None:
        if delta := scanner.feed(text):
            emit(delta)

    try:
        with pool.use(spec) as lease:
            reply = _chat_engine(lease).generate(
                turns, options, should_stop=lambda: scanner.stopped or stopped.is_set(), on_text=on_text
            )
    finally:
        turns.clear()
        release_memory()
    if stopped.is_set() and not scanner.stopped:
        raise RequestCancelled("The request was cancelled before the model finished.", input="messages")
    if tail := scanner.flush():
        emit(tail)
    reason = "stop" if scanner.stopped else _finish_reason(reply.finish_reason)
    usage = ChatUsage(reply.prompt_tokens, reply.completion_tokens)
    emit(ChatEnd(reason, usage, audio_seconds, time.perf_counter() - started))


def _decoded_turns(
    transcriber: Transcriber, request: ChatRequest, allowance: AudioAllowance
) -> tuple[list[ChatTurn], float]:
    """The conversation with every audio part decoded (16 kHz mono float32), and the seconds of audio."""
    turns: list[ChatTurn] = []
    for message in request.messages:
        parts: list[str | np.ndarray] = []
        for part in message.parts:
            if isinstance(part, str):
                parts.append(part)
                continue
            with naming_the_part(part.input):
                audio = transcriber.decode(io.BytesIO(part.data))  # the uploads' decode slots
            allowance.add(len(audio) / SAMPLE_RATE)
            parts.append(audio)
        turns.append(ChatTurn(message.role, tuple(parts)))
    return turns, allowance.used_s


def _chat_engine(lease: ModelLease) -> ChatEngine:
    engine = lease.engine
    if not isinstance(engine, ChatEngine):
        raise InvalidInputError(f"The model {lease.spec.id!r} is not a chat model.", input="model")
    return engine


def _finish_reason(reason: str) -> FinishReason:
    return "length" if reason == "length" else "stop"
