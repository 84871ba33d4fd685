"""The speech-to-text BentoML service."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import anyio
import bentoml
from starlette.responses import JSONResponse

from stt.devices import resolve_device
from stt.error_middleware import OpenAIErrorMiddleware
from stt.errors import APIError
from stt.model_files import HubAccess
from stt.model_pool import ModelPool
from stt.openai_api import app as openai_app
from stt.registry import ModelRegistry
from stt.results import Task, TranscribeOptions, TranscriptionResponse
from stt.settings import get_settings
from stt.transcriber import Transcriber
from stt.upload_limit import UploadLimitMiddleware
from strategies.base import RuntimeContext

logger = logging.getLogger("stt.service")


def error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=int(exc.status))


@bentoml.service(
    name="speech-to-text",
    resources={"gpu": 1},
    traffic={"timeout": 3600},
    workers=1,
)
@bentoml.asgi_app(openai_app, path="/v1")
class SpeechToText:
    def __init__(self) -> None:
        settings = get_settings()
        registry = ModelRegistry.from_file(settings.registry_path)
        registry.get(settings.default_model)  # fail fast on a default that is not registered
        runtime = RuntimeContext(
            device=resolve_device(settings.device),
            hub=HubAccess(token=settings.hf_token_value, cache_dir=settings.hf_cache_dir),
            cpu_threads=settings.cpu_thread_count,
        )
        self.pool = ModelPool(registry, runtime, load_retry_after_s=settings.model_load_retry_s)
        self.transcriber = Transcriber(self.pool, settings.default_model, settings.max_audio_duration_s)
        openai_app.state.transcriber = self.transcriber
        to_preload = [spec.id for spec in registry if spec.preload or spec.id == settings.default_model]
        threading.Thread(target=self.pool.preload, args=(to_preload,), name="preload", daemon=True).start()
        logger.info("serving on %s; preloading %s", runtime.device, ", ".join(to_preload))

    def __is_ready__(self) -> bool:
        return self.pool.preloaded.is_set()

    @bentoml.api(route="/transcribe")
    async def transcribe(
        self,
        file: Path,
        model_id: str | None = None,
        language: str | None = None,
        task: Task = "transcribe",
        word_timestamps: bool = False,
    ) -> TranscriptionResponse:
        """Transcribe (or translate to English) an audio file with a registry model."""
        options = TranscribeOptions(language=language, task=task, word_timestamps=word_timestamps)
        try:
            return await anyio.to_thread.run_sync(self.transcriber.transcribe, file, model_id, options)
        except APIError as exc:
            return error_response(exc)


SpeechToText.add_asgi_middleware(OpenAIErrorMiddleware)
SpeechToText.add_asgi_middleware(UploadLimitMiddleware, max_bytes=get_settings().max_upload_bytes)
