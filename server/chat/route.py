"""``POST /v1/chat/completions``: OpenAI's chat completions with audio in the messages, on the service's models.

A chat model (engine ``speech_llm``) answers the conversation; a transcription model answers with the
transcript of the last user message's audio, so ``model="whisper-1"`` (the default model) works out of the box.
``stream=true`` answers with ``chat.completion.chunk`` server-sent events (the role first, then the content as it
is written, then the finish reason, the usage with ``stream_options.include_usage``) and ``data: [DONE]``.
Errors are OpenAI's error bodies, from the ``/v1`` app's handlers; an error after the stream has started is an
``{"error": ...}`` event, which the official SDKs raise.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse

from core.errors import STTError
from pipeline.chat import Chat, ChatEnd, ChatRequest

from ..collaborators import ChatSettings, RouteSettings, get_chat, get_chat_settings, get_route_settings
from ..edge.disconnect import run_while_connected
from ..edge.errors import OPENAI_FIELDS, body_of, error_body, status_of
from ..observability.metering import RequestMeter, metered
from ..models.names import requested_model
from ..streaming import iterate_in_thread
from .messages import AudioLimits, read_messages
from .schemas import ChatCompletionRequest, ChunkWriter, completion_body, completion_id

logger = logging.getLogger("stt.chat")
router = APIRouter()

ChatDep = Annotated[Chat, Depends(get_chat)]
ChatSettingsDep = Annotated[ChatSettings, Depends(get_chat_settings)]
RouteSettingsDep = Annotated[RouteSettings, Depends(get_route_settings)]


@router.post("/chat/completions")
async def create_chat_completion(
    request: Request,
    body: ChatCompletionRequest,
    chat: ChatDep,
    settings: ChatSettingsDep,
    route_settings: RouteSettingsDep,
) -> Response:
    model_id = requested_model(body.model)
    with metered(chat.registry, model_id or chat.default_model, route_settings.log_transcripts) as meter:
        body.check_supported()
        chat.resolve(model_id)  # an unknown model is refused before any audio is read
        limits = AudioLimits(
            settings.max_audio_bytes, settings.allow_remote_audio_urls, settings.remote_audio_timeout_s
        )
        chat_request = ChatRequest(
            messages=await read_messages(body.messages, limits),
            model_id=model_id,
            max_tokens=body.token_limit(settings.max_completion_tokens),
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
            stop=body.stop_sequences(),
        )
        if body.stream:
            return await _stream(chat, chat_request, meter, body.include_usage)
        result = await run_while_connected(
            request, lambda cancelled: chat.complete(chat_request, cancelled), route_settings.request_timeout_s
        )
        meter.succeeded(result.end.audio_seconds, result.end.processing_s, result.text)
        return JSONResponse(completion_body(completion_id(), result.model_id, result.text, result.end))


async def _stream(chat: Chat, chat_request: ChatRequest, meter: RequestMeter, include_usage: bool) -> Response:
    stream = await anyio.to_thread.run_sync(chat.open_stream, chat_request)
    events = iterate_in_thread(stream.events)
    # The first event before answering: a busy, missing or failing model still gets a plain error response.
    first = await anext(events)
    writer = ChunkWriter(stream.model_id, include_usage)

    async def sse() -> Any:
        texts: list[str] = []
        item: str | ChatEnd = first
        try:
            yield _data(writer.chunk({"role": "assistant", "content": ""}))
            while isinstance(item, str):
                texts.append(item)
                yield _data(writer.chunk({"content": item}))
                item = await anext(events)
            yield _data(writer.chunk({}, item.finish_reason))
            if include_usage:
                yield _data(writer.usage(item.usage))
            meter.succeeded(item.audio_seconds, item.processing_s, "".join(texts))
            yield {"data": "[DONE]"}
        except STTError as exc:  # after the response started: an error event, as OpenAI sends
            meter.failed(status_of(exc), exc.code)
            yield _data(body_of(exc, OPENAI_FIELDS))
        except Exception:
            logger.exception("chat completion stream failed")
            meter.failed(500, "internal_error")
            message = "The model failed while writing its answer."
            yield _data(error_body(message, "server_error", None, "internal_error"))
        finally:
            meter.abandoned()
            await events.aclose()

    return EventSourceResponse(sse(), ping=15)


def _data(payload: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(payload)}
