"""One chat completion from end to end: pick the model, then let the model's kind answer."""

from __future__ import annotations

import threading

from core.registry import ModelKind, ModelRegistry, ModelSpec

from ..transcriber import Transcriber
from .generated_answer import generated_answer, generated_stream
from .limits import AudioAllowance, ChatLimits, check_audio_parts
from .stream import ChatStream
from .transcript_answer import transcript_answer, transcript_stream
from .types import ChatRequest, ChatResult

CHAT_KINDS: tuple[ModelKind, ...] = ("chat", "transcription")


class Chat:
    """Chat completions on the transcriber's registry and model pool."""

    def __init__(self, transcriber: Transcriber, limits: ChatLimits | None = None) -> None:
        self.transcriber = transcriber
        self.limits = limits or ChatLimits(max_audio_s=transcriber.max_audio_duration_s)
        """The audio one request may bring (None: no more parts than the request has, no more seconds than the
        uploads' limit in all)."""
        self.pool = transcriber.pool
        self.registry: ModelRegistry = transcriber.registry

    @property
    def default_model(self) -> str:
        return self.transcriber.default_model

    def resolve(self, model_id: str | None) -> ModelSpec:
        """The model a request names (None: the default): a chat model or a transcription model."""
        return self.registry.get(model_id or self.default_model, kind=CHAT_KINDS, purpose="answer a chat")

    def complete(self, request: ChatRequest, cancelled: threading.Event | None = None) -> ChatResult:
        """The whole answer. Setting ``cancelled`` (the client has gone, or its time is up) stops the model."""
        spec = self.resolve(request.model_id)
        check_audio_parts(request, self.limits)
        answer = transcript_answer if spec.kind == "transcription" else generated_answer
        return answer(self.transcriber, spec, request, cancelled, AudioAllowance(self.limits))

    def open_stream(self, request: ChatRequest) -> ChatStream:
        """Check the request and decode its audio now; the model runs as the stream is produced."""
        spec = self.resolve(request.model_id)
        check_audio_parts(request, self.limits)
        stream = transcript_stream if spec.kind == "transcription" else generated_stream
        return stream(self.transcriber, spec, request, AudioAllowance(self.limits))
