"""OpenAI-compatible audio routes, mounted at ``/v1`` on the BentoML service.

Clients that speak OpenAI's audio API (the official SDKs included) work by changing only ``base_url``.
``whisper-1`` names the configured default model.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import (
    APIError,
    InvalidRequestError,
    ModelBusyError,
    ModelNotFoundError,
    error_body,
    error_response,
    validation_message,
)
from .diarize import DiarizeOptions
from .formats import DIARIZED_FORMATS, MEDIA_TYPES, RESPONSE_FORMATS, render
from .results import Task, TranscribeOptions
from .streaming import iterate_in_thread
from .transcriber import Transcriber

DEFAULT_MODEL_ALIASES = frozenset({"whisper-1"})
GRANULARITIES = frozenset({"segment", "word"})
MODEL_CREATED = 1_700_000_000  # registry entries have no creation time; OpenAI's shape requires one

app = FastAPI(title="OpenAI-compatible audio API", docs_url=None, redoc_url=None)


def _transcriber(request: Request) -> Transcriber:
    return request.app.state.transcriber


@app.exception_handler(APIError)
async def _api_error(_: Request, exc: APIError) -> JSONResponse:
    return error_response(exc)


@app.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    message, param = validation_message(list(exc.errors()))
    return JSONResponse(error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400)


@app.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return JSONResponse(error_body(str(exc.detail), error_type), status_code=exc.status_code)


def resolve_model(transcriber: Transcriber, model: str | None) -> str:
    if not model or model in DEFAULT_MODEL_ALIASES:
        return transcriber.default_model
    transcriber.registry.get(model)  # 404 with the valid ids
    return model


def _check_common(response_format: str, temperature: float) -> None:
    if response_format not in RESPONSE_FORMATS:
        raise InvalidRequestError(
            f"Invalid response_format {response_format!r}: use one of {', '.join(RESPONSE_FORMATS)}.",
            param="response_format",
        )
    if not 0.0 <= temperature <= 1.0:
        raise InvalidRequestError("temperature must be between 0 and 1.", param="temperature")


def _granularities(values: list[str] | None, response_format: str) -> set[str]:
    granularities = set(values or [])
    if unknown := granularities - GRANULARITIES:
        raise InvalidRequestError(
            f"Invalid timestamp_granularities {sorted(unknown)}: use 'segment' and/or 'word'.",
            param="timestamp_granularities",
        )
    if granularities and response_format != "verbose_json":
        raise InvalidRequestError(
            "timestamp_granularities requires response_format=verbose_json.", param="timestamp_granularities"
        )
    return granularities


async def _respond(
    transcriber: Transcriber,
    file: UploadFile,
    model_id: str,
    options: TranscribeOptions,
    response_format: str,
    granularities: set[str],
    speakers: DiarizeOptions | None = None,
) -> Response:
    result = await anyio.to_thread.run_sync(transcriber.transcribe, file.file, model_id, options, speakers)
    body = render(result, response_format, options.task, granularities)
    if isinstance(body, dict):
        return JSONResponse(body)
    return PlainTextResponse(body, media_type=MEDIA_TYPES[response_format])


async def _stream(transcriber: Transcriber, file: UploadFile, model_id: str, options: TranscribeOptions) -> Response:
    segments = iterate_in_thread(lambda: transcriber.stream(file.file, model_id, options))
    # Pull the first segment before answering, so a bad request still gets a plain error response.
    try:
        first = await anext(segments)
    except StopAsyncIteration:
        first = None

    async def events() -> Any:
        texts: list[str] = []
        if first is not None:
            texts.append(first.text)
            yield _event({"type": "transcript.text.delta", "delta": first.text})
            async for segment in segments:
                texts.append(segment.text)
                yield _event({"type": "transcript.text.delta", "delta": segment.text})
        yield _event({"type": "transcript.text.done", "text": "".join(texts).strip()})

    return EventSourceResponse(events(), ping=15)


def _event(payload: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(payload)}


@app.post("/audio/transcriptions")
async def create_transcription(
    request: Request,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
    timestamp_granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
    stream: Annotated[bool, Form()] = False,
    chunking_strategy: Annotated[str | None, Form()] = None,
    num_speakers: Annotated[int | None, Form()] = None,
    min_speakers: Annotated[int | None, Form()] = None,
    max_speakers: Annotated[int | None, Form()] = None,
) -> Response:
    """OpenAI's transcription route. ``diarized_json`` (and the ``jsonl`` extension: one speaker turn per
    line) label speakers; ``num_speakers``/``min_speakers``/``max_speakers`` are extensions that guide it.
    ``chunking_strategy`` is accepted for compatibility; long audio is always handled."""
    transcriber = _transcriber(request)
    _check_common(response_format, temperature)
    granularities = _granularities(timestamp_granularities, response_format)
    model_id = resolve_model(transcriber, model)
    speakers = None
    if response_format in DIARIZED_FORMATS:
        speakers = DiarizeOptions(num_speakers, min_speakers, max_speakers)
        if stream:
            raise InvalidRequestError("stream=true cannot be combined with a diarized response.", param="stream")
    options = TranscribeOptions(
        language=language,
        task="transcribe",
        word_timestamps="word" in granularities,
        initial_prompt=prompt or None,
        temperature=temperature,
    )
    if stream:
        return await _stream(transcriber, file, model_id, options)
    return await _respond(transcriber, file, model_id, options, response_format, granularities, speakers)


@app.post("/audio/translations")
async def create_translation(
    request: Request,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
) -> Response:
    transcriber = _transcriber(request)
    _check_common(response_format, temperature)
    if response_format in DIARIZED_FORMATS:
        raise InvalidRequestError("Diarized responses are only available for transcriptions.", param="response_format")
    model_id = resolve_model(transcriber, model)
    task: Task = "translate"
    options = TranscribeOptions(task=task, initial_prompt=prompt or None, temperature=temperature)
    return await _respond(transcriber, file, model_id, options, response_format, set())


def _model_card(transcriber: Transcriber, model_id: str, shown_id: str | None = None) -> dict[str, Any]:
    spec = transcriber.registry.get(model_id)
    state = next((s for s in transcriber.pool.states() if s.id == spec.id), None)
    return {
        "id": shown_id or spec.id,
        "object": "model",
        "created": MODEL_CREATED,
        "owned_by": "speech-to-text",
        "engine": spec.engine,
        "language": spec.language,
        "default": spec.id == transcriber.default_model,
        "loaded": bool(state and state.loaded),
        "pinned": bool(state and state.pinned),
        "in_use": state.leases if state else 0,
        "resident_bytes": state.resident_bytes if state else 0,
    }


@app.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    transcriber = _transcriber(request)
    return {"object": "list", "data": [_model_card(transcriber, spec.id) for spec in transcriber.registry]}


@app.get("/models/{model_id}")
async def retrieve_model(request: Request, model_id: str) -> dict[str, Any]:
    transcriber = _transcriber(request)
    if model_id in DEFAULT_MODEL_ALIASES:
        return _model_card(transcriber, transcriber.default_model, shown_id=model_id)
    if model_id not in transcriber.registry:
        raise ModelNotFoundError(
            f"The model {model_id!r} does not exist. Valid models: {', '.join(transcriber.registry.ids())}.",
            param="model",
        )
    return _model_card(transcriber, model_id)


def _admin_transcriber(request: Request, model_id: str) -> Transcriber:
    if not request.app.state.admin_api:
        raise StarletteHTTPException(status_code=404, detail="Not Found")
    transcriber = _transcriber(request)
    transcriber.registry.get(model_id)  # only registry models; the API never creates or changes one
    return transcriber


@app.post("/admin/models/{model_id}/load")
async def admin_load(request: Request, model_id: str, pin: bool = False) -> dict[str, Any]:
    """Operator-only (STT_ADMIN_API): load a registry model now, optionally pinned."""
    transcriber = _admin_transcriber(request, model_id)
    await anyio.to_thread.run_sync(lambda: transcriber.pool.load(model_id, pin=pin))
    return _model_card(transcriber, model_id)


@app.post("/admin/models/{model_id}/unload")
async def admin_unload(request: Request, model_id: str) -> dict[str, Any]:
    """Operator-only (STT_ADMIN_API): unload an idle model now."""
    transcriber = _admin_transcriber(request, model_id)
    if not await anyio.to_thread.run_sync(transcriber.pool.unload, model_id):
        state = _model_card(transcriber, model_id)
        if state["loaded"]:
            raise ModelBusyError(f"The model {model_id!r} is in use; try again when its requests finish.", param="model")
    return _model_card(transcriber, model_id)
