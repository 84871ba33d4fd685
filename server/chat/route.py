"""``POST /v1/chat/completions``: OpenAI's chat completions with audio in the messages, on the service's models.

A chat model (engine ``speech_llm``) answers the conversation; a transcription model answers with the
transcript of the last user message's audio, so ``model="whisper-1"`` (the default model) works out of the box.
``stream=true`` answers with ``chat.completion.chunk`` server-sent events (the role first, then the content as it
is written, then the finish reason, the usage with ``stream_options.include_usage``) and ``data: [DONE]``.
Errors are OpenAI's error bodies, from the ``/v1`` app's handlers; an error after the stream has started is an
``{"error": ...}`` event, which the official SDKs raise.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from pipeline.chat import Chat, ChatEnd, ChatItem, ChatRequest, ChatStream

from ..collaborators import ChatSettings, RouteSettings, get_chat, get_chat_settings, get_route_settings
from ..edge.allowed_hosts import AllowedHosts
from ..edge.disconnect import run_while_connected
from ..edge.errors import OPENAI_AUDIO_STATUSES, error_body
from ..edge.json_input import json_text
from ..models.names import requested_model
from ..observability.metering import metered
from ..sse import EventSource, Payload, StreamEnd, event_stream
from ..streaming import Emit
from .messages import AudioLimits, read_messages
from .schemas import ChunkWriter, completion_body, completion_id, read_request, request_body_openapi

logger = logging.getLogger("stt.chat")
router = APIRouter()

ChatDep = Annotated[Chat, Depends(get_chat)]
ChatSettingsDep = Annotated[ChatSettings, Depends(get_chat_settings)]
RouteSettingsDep = Annotated[RouteSettings, Depends(get_route_settings)]


@router.post("/chat/completions", openapi_extra=request_body_openapi())
async def create_chat_completion(
    request: Request,
    chat: ChatDep,
    settings: ChatSettingsDep,
    route_settings: RouteSettingsDep,
) -> Response:
    body = read_request(await _body_text(request))
    model_id = requested_model(body.model)
    default = chat.default_model
    with metered(chat.registry, model_id or default, route_settings.log_transcripts, OPENAI_AUDIO_STATUSES) as meter:
        body.check_supported()
        chat.resolve(model_id)  # an unknown model is refused before any audio is read
        limits = AudioLimits(
            settings.max_audio_bytes,
            settings.allow_remote_audio_urls,
            settings.remote_audio_timeout_s,
            AllowedHosts.parse(settings.fetch_allowed_hosts),
        )
        chat_request = ChatRequest(
            messages=await read_messages(body.messages, limits, settings.max_text_bytes),
            model_id=model_id,
            max_tokens=body.token_limit(settings.max_completion_tokens),
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
            stop=body.stop_sequences(),
        )
        if body.stream:
            return await event_stream(
                lambda: _Chunks(chat.open_stream(chat_request), body.include_usage),
                meter,
                route_settings.request_timeout_s,
            )
        result = await run_while_connected(
            request, lambda cancelled: chat.complete(chat_request, cancelled), route_settings.request_timeout_s
        )
        meter.succeeded(result.end.audio_seconds, result.end.processing_s, result.text)
        return JSONResponse(completion_body(completion_id(), result.model_id, result.text, result.end))


async def _body_text(request: Request) -> str:
    """The request's body as text, its bytes let go once decoded (``Request.body()`` would keep them, base64 audio and
    all, for as long as the answer takes), so that parsing holds the text and its result, never the bytes beside
    them (``edge.json_input.json_text``). With a ``Content-Length`` (the upload limit has checked it) the buffer is
    allocated once at its size: grown piece by piece, a large one is copied as it grows and held twice meanwhile."""
    declared = request.headers.get("content-length", "")
    body = bytearray(int(declared)) if declared.isdigit() else bytearray()
    filled = 0
    async for chunk in request.stream():
        body[filled : filled + len(chunk)] = chunk  # within the declared size: in place; past it, appended
        filled += len(chunk)
    del body[filled:]
    return json_text(body)


CHAT_ROUTES = (create_chat_completion,)
"""The routes whose errors take OpenAI's audio statuses (``OPENAI_AUDIO_STATUSES``): audio in a message that is
not audio is a 400, as on ``/v1/audio/*``."""


class _Chunks(EventSource[ChatItem]):
    """The answer as ``chat.completion.chunk`` events: the role first, then the content as it is written, then
    the finish reason and, with ``include_usage``, the usage; then ``[DONE]``."""

    done_marker = "[DONE]"

    def __init__(self, stream: ChatStream, include_usage: bool) -> None:
        self.stream = stream
        self.writer = ChunkWriter(stream.model_id, include_usage)
        self.texts: list[str] = []
        self.end: ChatEnd | None = None

    def produce(self, emit: Emit[ChatItem], stopped: threading.Event) -> None:
        self.stream.produce(emit, stopped)

    def opening(self) -> list[Payload]:
        return [self.writer.chunk({"role": "assistant", "content": ""})]

    def events(self, item: ChatItem) -> list[Payload]:
        if isinstance(item, ChatEnd):
            self.end = item
            return []
        self.texts.append(item)
        return [self.writer.chunk({"content": item})]

    def closing(self) -> StreamEnd:
        end = self.end
        if end is None:
            raise RuntimeError("the chat stream ended without saying how")
        chunks = [self.writer.chunk({}, end.finish_reason)]
        if self.writer.include_usage:
            chunks.append(self.writer.usage(end.usage))
        return StreamEnd(chunks, end.audio_seconds, end.processing_s, "".join(self.texts))

    def unexpected_error(self) -> Payload:
        logger.exception("chat completion stream failed")
        return error_body("The model failed while writing its answer.", "server_error", None, "internal_error")
