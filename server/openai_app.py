"""The ``/v1`` app: OpenAI's API (audio, models, realtime, chat) on the service's collaborators, every error in
OpenAI's shape. BentoML mounts it at ``/v1``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import STTError

from .audio import AUDIO_ROUTES
from .audio import router as audio_router
from .batches import router as batches_router
from .chat import CHAT_ROUTES
from .chat import router as chat_router
from .collaborators import Collaborators, bind
from .edge.errors import OPENAI_AUDIO_STATUSES, OPENAI_FIELDS, error_body, error_response, validation_message
from .models import router as models_router
from .realtime import router as realtime_router


def create_openai_app(collaborators: Collaborators | None = None) -> FastAPI:
    """The ``/v1`` app, its routes working with ``collaborators`` (given here, or later with ``bind``)."""
    app = FastAPI(title="OpenAI-compatible audio API", docs_url=None, redoc_url=None)
    app.add_exception_handler(STTError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.include_router(audio_router)  # POST /v1/audio/transcriptions, /translations and /diarizations
    app.include_router(models_router)  # GET /v1/models; POST /v1/admin/models/{id}/load and /unload
    app.include_router(realtime_router)  # GET /v1/realtime: live transcription over a WebSocket
    app.include_router(chat_router)  # POST /v1/chat/completions: audio (and text) in, text out
    app.include_router(batches_router)  # /v1/files and /v1/batches: OpenAI's Batch API for the audio routes
    if collaborators is not None:
        bind(app, collaborators)
    return app


async def _domain_error(request: Request, exc: STTError) -> JSONResponse:
    statuses = OPENAI_AUDIO_STATUSES if request.scope.get("endpoint") in (*AUDIO_ROUTES, *CHAT_ROUTES) else {}
    return error_response(exc, OPENAI_FIELDS, statuses=statuses)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    message, param = validation_message(list(exc.errors()))
    return JSONResponse(error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return JSONResponse(error_body(str(exc.detail), error_type), status_code=exc.status_code)
