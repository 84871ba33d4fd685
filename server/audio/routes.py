"""OpenAI-compatible audio routes, mounted at ``/v1`` on the BentoML service.

Clients that speak OpenAI's audio API (the official SDKs included) work by changing only ``base_url``.
``whisper-1`` names the configured default model.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import InvalidInputError, ModelBusyError, STTError
from core.types import DiarizeOptions, Segment, TranscribeOptions
from pipeline.transcriber import Transcriber

from ..chat import router as chat_router
from ..collaborators import RouteSettings, get_route_settings, get_transcriber
from ..edge.errors import (
    OPENAI_AUDIO_STATUSES, OPENAI_FIELDS, body_of, error_body, error_response, status_of, validation_message,
)
from .formats import DIARIZED_FORMATS, MEDIA_TYPES, diarized_segments, logprobs_of, render, token_usage
from ..observability.metering import RequestMeter, metered
from ..models.names import DEFAULT_MODEL_ALIASES, requested_model
from ..realtime import router as realtime_router
from .speaker_references import MAX_REFERENCE_FIELD_BYTES
from ..streaming import iterate_in_thread
from .transcribe_call import transcribe_metered
from .transcription_form import TranscriptionForm, check_common, transcription_form

MODEL_CREATED = 1_700_000_000  # registry entries have no creation time; OpenAI's shape requires one

app = FastAPI(title="OpenAI-compatible audio API", docs_url=None, redoc_url=None)
TranscriberDep = Annotated[Transcriber, Depends(get_transcriber)]
SettingsDep = Annotated[RouteSettings, Depends(get_route_settings)]


@app.exception_handler(STTError)
async def _domain_error(request: Request, exc: STTError) -> JSONResponse:
    statuses = OPENAI_AUDIO_STATUSES if request.scope.get("endpoint") in _AUDIO_ROUTES else {}
    return error_response(exc, OPENAI_FIELDS, statuses=statuses)


@app.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    message, param = validation_message(list(exc.errors()))
    return JSONResponse(error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400)


@app.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return JSONResponse(error_body(str(exc.detail), error_type), status_code=exc.status_code)


async def _respond(
    request: Request,
    settings: RouteSettings,
    transcriber: Transcriber,
    meter: RequestMeter,
    file: UploadFile,
    model_id: str | None,
    options: TranscribeOptions,
    response_format: str,
    granularities: set[str],
    speakers: DiarizeOptions | None = None,
) -> Response:
    result = await transcribe_metered(request, transcriber, settings, meter, file.file, model_id, options, speakers)
    body = render(result.transcription, response_format, options.task, granularities, options.logprobs)
    if isinstance(body, dict):
        return JSONResponse(body)
    return PlainTextResponse(body, media_type=MEDIA_TYPES[response_format])


async def _stream(
    transcriber: Transcriber,
    meter: RequestMeter,
    file: UploadFile,
    model_id: str | None,
    options: TranscribeOptions,
    speakers: DiarizeOptions | None = None,
) -> Response:
    """``transcript.text.delta`` events as segments are decoded; with ``speakers`` (``diarized_json``), then one
    ``transcript.text.segment`` per speaker turn once the diarizer has heard the whole file; then
    ``transcript.text.done``."""
    stream = await anyio.to_thread.run_sync(transcriber.open_stream, file.file, model_id, options, speakers)
    started = time.perf_counter()
    segments = iterate_in_thread(stream.segments)
    # Pull the first segment before answering, so that a busy or missing model still gets a plain error response.
    try:
        first = await anext(segments)
    except StopAsyncIteration:
        first = None

    async def events() -> Any:
        decoded: list[Segment] = []
        try:
            if first is not None:
                decoded.append(first)
                yield _event(_delta(first, options))
                async for segment in segments:
                    decoded.append(segment)
                    yield _event(_delta(segment, options))
            for turn in diarized_segments(stream.speaker_segments or []):
                yield _event(turn)
            text = "".join(segment.text for segment in decoded).strip()
            done: dict[str, Any] = {"type": "transcript.text.done", "text": text}
            if options.logprobs:
                done["logprobs"] = logprobs_of(decoded)
            if (usage := token_usage(stream.duration, decoded)) is not None:
                done["usage"] = usage
            yield _event(done)
            meter.succeeded(stream.duration, time.perf_counter() - started, text)
        except STTError as exc:  # after the answer started (a later clip, the diarizer): an error event ends it
            meter.failed(status_of(exc, OPENAI_AUDIO_STATUSES), exc.code)
            yield _event(body_of(exc, OPENAI_FIELDS))
        finally:
            meter.abandoned()

    return EventSourceResponse(events(), ping=15)


def _delta(segment: Segment, options: TranscribeOptions) -> dict[str, Any]:
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


def _event(payload: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(payload)}


@app.post("/audio/transcriptions", form_limits={"max_part_size": MAX_REFERENCE_FIELD_BYTES})
async def create_transcription(
    request: Request,
    transcriber: TranscriberDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    form: Annotated[TranscriptionForm, Depends(transcription_form)],
) -> Response:
    """OpenAI's transcription route; its parameters are read and checked in ``transcription_form``.
    ``diarized_json`` (and the ``jsonl`` extension: one speaker turn per line) label speakers."""
    model_id = form.model_id
    default = transcriber.default_model
    with metered(transcriber.registry, model_id or default, settings.log_transcripts, OPENAI_AUDIO_STATUSES) as meter:
        if form.stream:
            return await _stream(transcriber, meter, file, model_id, form.options, form.speakers)
        return await _respond(
            request, settings, transcriber, meter, file, model_id, form.options, form.response_format,
            set(form.granularities), form.speakers,
        )


@app.post("/audio/translations")
async def create_translation(
    request: Request,
    transcriber: TranscriberDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
) -> Response:
    check_common(response_format, temperature)
    if response_format in DIARIZED_FORMATS:
        raise InvalidInputError("Diarized responses are only available for transcriptions.", input="response_format")
    model_id = requested_model(model)
    options = TranscribeOptions(task="translate", initial_prompt=prompt or None, temperature=temperature)
    default = transcriber.default_model
    with metered(transcriber.registry, model_id or default, settings.log_transcripts, OPENAI_AUDIO_STATUSES) as meter:
        return await _respond(
            request, settings, transcriber, meter, file, model_id, options, response_format, set()
        )


_AUDIO_ROUTES = (create_transcription, create_translation)


def _model_card(transcriber: Transcriber, model_id: str, shown_id: str | None = None) -> dict[str, Any]:
    """A model in OpenAI's shape, with extensions; ``shown_id`` names an alias, whose card also says ``alias_of``."""
    spec = transcriber.registry.get(model_id)
    state = transcriber.pool.state(spec.id)
    alias = {"alias_of": spec.id} if shown_id else {}
    return {
        "id": shown_id or spec.id,
        **alias,
        "object": "model",
        "created": MODEL_CREATED,
        "owned_by": "speech-to-text",
        "kind": spec.kind,
        "engine": spec.engine,
        "language": spec.language,
        "default": spec.id == transcriber.default_model,
        "loaded": bool(state and state.loaded),
        "pinned": bool(state and state.pinned),
        "in_use": state.leases if state else 0,
        "resident_bytes": state.resident_bytes if state else 0,
    }


# The model cards read the pool's state under its lock: off the event loop, so health checks never wait on it.


def _model_cards(transcriber: Transcriber) -> list[dict[str, Any]]:
    """The registry's models, then the default model's aliases (``whisper-1``), as OpenAI lists the names it takes."""
    cards = [_model_card(transcriber, spec.id) for spec in transcriber.registry]
    return cards + [_model_card(transcriber, transcriber.default_model, alias) for alias in sorted(DEFAULT_MODEL_ALIASES)]


@app.get("/models")
async def list_models(transcriber: TranscriberDep) -> dict[str, Any]:
    cards = await anyio.to_thread.run_sync(_model_cards, transcriber)
    return {"object": "list", "data": cards}


@app.get("/models/{model_id}")
async def retrieve_model(transcriber: TranscriberDep, model_id: str) -> dict[str, Any]:
    if model_id in DEFAULT_MODEL_ALIASES:
        return await anyio.to_thread.run_sync(_model_card, transcriber, transcriber.default_model, model_id)
    return await anyio.to_thread.run_sync(_model_card, transcriber, model_id)


def _admin_transcriber(transcriber: TranscriberDep, settings: SettingsDep, model_id: str) -> Transcriber:
    if not settings.admin_api:
        raise StarletteHTTPException(status_code=404, detail="Not Found")
    transcriber.registry.get(model_id)  # only registry models; the API never creates or changes one
    return transcriber


AdminDep = Annotated[Transcriber, Depends(_admin_transcriber)]


@app.post("/admin/models/{model_id}/load")
async def admin_load(transcriber: AdminDep, model_id: str, pin: bool = False) -> dict[str, Any]:
    """Operator-only (STT_ADMIN_API): load a registry model now, optionally pinned."""
    await anyio.to_thread.run_sync(lambda: transcriber.pool.load(model_id, pin=pin))
    return await anyio.to_thread.run_sync(_model_card, transcriber, model_id)


@app.post("/admin/models/{model_id}/unload")
async def admin_unload(transcriber: AdminDep, model_id: str) -> dict[str, Any]:
    """Operator-only (STT_ADMIN_API): unload an idle model now."""
    unloaded = await anyio.to_thread.run_sync(transcriber.pool.unload, model_id)
    card = await anyio.to_thread.run_sync(_model_card, transcriber, model_id)
    if not unloaded and card["loaded"]:
        raise ModelBusyError(f"The model {model_id!r} is in use; try again when its requests finish.", input="model")
    return card


app.include_router(realtime_router)  # GET /v1/realtime: live transcription over a WebSocket
app.include_router(chat_router)  # POST /v1/chat/completions: audio (and text) in, text out
