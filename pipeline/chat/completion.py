"""One chat completion from end to end: pick the model, take the audio and the text out of the messages, run
the model, cut the answer at the request's stop strings, clean up.

Two kinds of model answer a chat:

* a transcription model (Whisper and the like) answers with the transcript of the audio parts of the last
  user message, in order; that message's text parts are the transcription prompt. Earlier messages, system
  messages and sampling settings other than the temperature do not apply to it.
* a chat model (engine ``speech_llm``) reads the whole conversation, system messages and history included,
  with each message's audio decoded to 16 kHz mono where it stands, and writes the next message.

Every audio part is decoded as uploads are (``Transcriber.decode``: the one choke point, the service's duration
limit, its decode slots), before the model is leased; a part that cannot be decoded fails the request with the part's
place in the messages as its input. Nothing here knows HTTP: the server layer turns requests into
:class:`ChatRequest` and results into OpenAI's shapes.
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.audio import SAMPLE_RATE
from core.devices import release_memory
from core.errors import InvalidInputError, RequestCancelled, STTError
from core.registry import ModelRegistry, ModelSpec
from core.types import Transcription, TranscribeOptions
from strategies.base import ChatReply, ChatStrategy, ChatTurn, GenerationOptions

from .model_pool import ModelLease, ModelPool
from .transcriber import Transcriber, TranscriptionStream

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]
CHAT_KINDS = ("chat", "transcription")


@dataclass(frozen=True)
class AudioInput:
    """An audio file (any container FFmpeg reads) carried by a message, and the request input that carried it."""

    data: bytes
    input: str
    """Where the audio was in the request (``messages.[0].content.[1]``): the input named by its errors."""


Part = str | AudioInput


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "".join(part for part in self.parts if isinstance(part, str))

    @property
    def audio(self) -> list[AudioInput]:
        return [part for part in self.parts if isinstance(part, AudioInput)]


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    model_id: str | None
    """A registry id; None: the default model."""
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatUsage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatEnd:
    """How an answer ended: the last item of a stream, and the tail of every result."""

    finish_reason: FinishReason
    usage: ChatUsage
    audio_seconds: float
    processing_s: float


@dataclass(frozen=True)
class ChatResult:
    model_id: str
    text: str
    end: ChatEnd


class Chat:
    """Chat completions on the transcriber's registry and model pool."""

    def __init__(self, transcriber: Transcriber) -> None:
        self.transcriber = transcriber
        self.pool = transcriber.pool
        self.registry: ModelRegistry = transcriber.registry

    @property
    def default_model(self) -> str:
        return self.transcriber.default_model

    def resolve(self, model_id: str | None) -> ModelSpec:
        """The model a request names (None: the default): a chat model or a transcription model."""
        spec = self.registry.get(model_id or self.default_model)
        if spec.kind not in CHAT_KINDS:
            valid = [i for i in self.registry.ids() if self.registry.get(i).kind in CHAT_KINDS]
            raise InvalidInputError(
                f"The model {spec.id!r} is a {spec.kind} model: it cannot answer a chat. Valid models: "
                f"{', '.join(valid)}.",
                input="model",
            )
        return spec

    def complete(self, request: ChatRequest, cancelled: threading.Event | None = None) -> ChatResult:
        """The whole answer. Setting ``cancelled`` (the client has gone, or its time is up) stops the model."""
        spec = self.resolve(request.model_id)
        if spec.kind == "transcription":
            return self._transcribe(spec, request, cancelled)
        turns, audio_seconds = self._turns(request)
        scanner = StopScanner(request.stop)
        pieces: list[str] = []
        started = time.perf_counter()
        try:
            with self.pool.use(spec) as lease:
                reply = _chat_engine(lease).generate(
                    turns,
                    _generation_options(request),
                    should_stop=lambda: scanner.stopped or bool(cancelled and cancelled.is_set()),
                    on_text=lambda text: pieces.append(scanner.feed(text)),
                )
        finally:
            del turns
            release_memory()
        if cancelled is not None and cancelled.is_set() and not scanner.stopped:
            raise RequestCancelled("The request was cancelled before the model finished.", input="messages")
        pieces.append(scanner.flush())
        end = ChatEnd(
            "stop" if scanner.stopped else _finish_reason(reply.finish_reason),
            ChatUsage(reply.prompt_tokens, reply.completion_tokens),
            audio_seconds,
            time.perf_counter() - started,
        )
        return ChatResult(spec.id, "".join(pieces), end)

    def open_stream(self, request: ChatRequest) -> ChatStream:
        """Check the request and decode its audio now; the model runs as the stream's events are read."""
        spec = self.resolve(request.model_id)
        if spec.kind == "transcription":
            message, prompt = _transcription_input(spec, request)
            streams = []
            for audio in message.audio:
                with _labelled(audio.input):
                    source = io.BytesIO(audio.data)
                    streams.append(self.transcriber.open_stream(source, spec.id, _transcribe_options(prompt, request)))
            return ChatStream(spec.id, lambda: _transcript_events(streams, request.stop))
        turns, audio_seconds = self._turns(request)
        options = _generation_options(request)
        return ChatStream(
            spec.id, lambda: _generated_events(self.pool, spec, turns, options, request.stop, audio_seconds)
        )

    # ------------------------------------------------------------------ transcription models

    def _transcribe(self, spec: ModelSpec, request: ChatRequest, cancelled: threading.Event | None) -> ChatResult:
        message, prompt = _transcription_input(spec, request)
        options = _transcribe_options(prompt, request)
        transcriptions: list[Transcription] = []
        processing_s = 0.0
        for audio in message.audio:
            with _labelled(audio.input):
                result = self.transcriber.transcribe(io.BytesIO(audio.data), spec.id, options, cancelled=cancelled)
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

    # ------------------------------------------------------------------ chat models

    def _turns(self, request: ChatRequest) -> tuple[list[ChatTurn], float]:
        """The conversation with every audio part decoded (16 kHz mono float32), and the seconds of audio."""
        turns: list[ChatTurn] = []
        seconds = 0.0
        for message in request.messages:
            parts: list[str | np.ndarray] = []
            for part in message.parts:
                if isinstance(part, str):
                    parts.append(part)
                    continue
                with _labelled(part.input):
                    audio = self.transcriber.decode(io.BytesIO(part.data))  # the uploads' decode slots
                seconds += len(audio) / SAMPLE_RATE
                parts.append(audio)
            turns.append(ChatTurn(message.role, tuple(parts)))
        limit = self.transcriber.max_audio_duration_s
        if limit is not None and seconds > limit:
            raise InvalidInputError(
                f"The request's audio lasts {seconds:.0f} seconds in all, over the limit of {limit:g} seconds.",
                input="messages",
                code="audio_too_long",
            )
        return turns, seconds


class ChatStream:
    """A checked request whose audio is decoded. ``events()`` runs the model once: text deltas (``str``) as
    they come, then one :class:`ChatEnd`. Model errors (busy, unavailable) surface at the first ``next()``."""

    def __init__(self, model_id: str, make_events: Callable[[], Iterator[str | ChatEnd]]) -> None:
        self.model_id = model_id
        self._make_events: Callable[[], Iterator[str | ChatEnd]] | None = make_events

    def events(self) -> Iterator[str | ChatEnd]:
        make_events, self._make_events = self._make_events, None
        if make_events is None:
            raise RuntimeError("the stream's events were already read")
        return make_events()


class StopScanner:
    """Cuts generated text at the first of the request's stop strings (which is not part of the answer).
    Text that may be the start of a stop string is held back until the next piece tells."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of ``text`` (after what was held back) that is certainly answer."""
        if self.stopped:
            return ""
        text = self._held + text
        hits = [text.find(stop) for stop in self.stops if stop in text]
        if hits:
            self.stopped = True
            self._held = ""
            return text[: min(hits)]
        keep = next(
            (n for n in range(min(len(text), max(map(len, self.stops), default=1) - 1), 0, -1)
             if any(stop.startswith(text[-n:]) for stop in self.stops)),
            0,
        )
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep]

    def flush(self) -> str:
        """What was held back, once the text has ended without a stop string."""
        held, self._held = self._held, ""
        return "" if self.stopped else held


# ---------------------------------------------------------------------------------------------------- helpers


def _chat_engine(lease: ModelLease) -> ChatStrategy:
    engine = lease.engine
    if not isinstance(engine, ChatStrategy):
        raise InvalidInputError(f"The model {lease.spec.id!r} is not a chat model.", input="model")
    return engine


def _generation_options(request: ChatRequest) -> GenerationOptions:
    return GenerationOptions(
        max_new_tokens=request.max_tokens, temperature=request.temperature, top_p=request.top_p, seed=request.seed
    )


def _finish_reason(reason: str) -> FinishReason:
    return "length" if reason == "length" else "stop"


def _transcription_input(spec: ModelSpec, request: ChatRequest) -> tuple[ChatMessage, str | None]:
    """The last user message, which must hold audio, and its text as the transcription prompt."""
    message = next((m for m in reversed(request.messages) if m.role == "user"), None)
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
    return message, message.text.strip() or None


def _transcribe_options(prompt: str | None, request: ChatRequest) -> TranscribeOptions:
    return TranscribeOptions(initial_prompt=prompt, temperature=request.temperature)


@contextmanager
def _labelled(where: str) -> Iterator[None]:
    """Errors about the audio (``file``, in the decoder's terms) name the message part that carried it."""
    try:
        yield
    except STTError as exc:
        if exc.input != "file":
            raise
        labelled = type(exc)(exc.message.replace("The uploaded file", "The audio"), input=where, code=exc.code)
        raise labelled from exc


def _joined(texts: Iterator[str] | Sequence[str]) -> str:
    return " ".join(text.strip() for text in texts if text.strip())


def _token_count(text: str, segment_tokens: Sequence[int]) -> int:
    """Tokens the transcription model wrote: its own count where the engine reports one, else the words."""
    return sum(segment_tokens) or len(text.split())


def _transcript_events(streams: list[TranscriptionStream], stops: Sequence[str]) -> Iterator[str | ChatEnd]:
    scanner = StopScanner(stops)
    started = time.perf_counter()
    tokens = 0
    first = True
    for stream in streams:
        segments = stream.segments()
        try:
            for segment in segments:
                text = segment.text.strip()
                if not text:
                    continue
                tokens += _token_count(text, [len(segment.tokens)])
                delta = scanner.feed(text if first else " " + text)
                first = False
                if delta:
                    yield delta
                if scanner.stopped:
                    break
        finally:
            segments.close()  # the model's lease is let go at once
        if scanner.stopped:
            break
    if tail := scanner.flush():
        yield tail
    seconds = sum(stream.duration for stream in streams)
    yield ChatEnd("stop", ChatUsage(0, tokens), seconds, time.perf_counter() - started)


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _generated_events(
    pool: ModelPool,
    spec: ModelSpec,
    turns: list[ChatTurn],
    options: GenerationOptions,
    stops: Sequence[str],
    audio_seconds: float,
) -> Iterator[str | ChatEnd]:
    """The chat model's text as it writes it. ``generate`` runs on its own thread (it pushes text, the stream
    pulls it); closing the stream early stops the model at its next token."""
    items: queue.Queue[object] = queue.Queue()
    stop = threading.Event()
    started = time.perf_counter()

    def work() -> None:
        try:
            with pool.use(spec) as lease:
                reply = _chat_engine(lease).generate(turns, options, should_stop=stop.is_set, on_text=items.put)
            items.put(reply)
        except BaseException as exc:  # raised in the reader's thread
            items.put(_Failed(exc))
        finally:
            turns.clear()
            release_memory()

    threading.Thread(target=work, name=f"chat-{spec.id}", daemon=True).start()
    scanner = StopScanner(stops)
    try:
        while True:
            item = items.get()
            if isinstance(item, str):
                if delta := scanner.feed(item):
                    yield delta
                if scanner.stopped:
                    stop.set()
                continue
            if isinstance(item, _Failed):
                raise item.error
            assert isinstance(item, ChatReply)
            if tail := scanner.flush():
                yield tail
            reason = "stop" if scanner.stopped else _finish_reason(item.finish_reason)
            usage = ChatUsage(item.prompt_tokens, item.completion_tokens)
            yield ChatEnd(reason, usage, audio_seconds, time.perf_counter() - started)
            return
    finally:
        stop.set()  # a reader that stops early (a client gone) stops the model


__all__ = [
    "AudioInput",
    "Chat",
    "ChatEnd",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ChatStream",
    "ChatUsage",
    "StopScanner",
]
