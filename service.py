"""The speech-to-text BentoML service."""

from __future__ import annotations

import logging
import threading

import anyio
import bentoml

from stt import request_log
from stt.auth import ApiKeyMiddleware
from stt.bootstrap import build_transcriber, models_to_preload
from stt.error_middleware import OpenAIErrorMiddleware
from stt.diarize import DiarizeOptions
from stt.errors import APIError, error_response
from stt.openai_api import app as openai_app
from stt.results import Task, TranscribeOptions, TranscriptionResponse
from stt.settings import get_settings
from stt.upload_limit import UploadLimitMiddleware
from stt.uploads import UploadPath

logger = logging.getLogger("stt.service")


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
        request_log.configure(settings.log_level)
        self.transcriber = build_transcriber(settings)
        self.pool = self.transcriber.pool
        openai_app.state.transcriber = self.transcriber
        openai_app.state.admin_api = settings.admin_api
        # Preload in the background so /livez answers at once while /readyz stays 503 until models are in memory.
        to_preload = models_to_preload(self.transcriber)
        threading.Thread(target=self.pool.preload, args=(to_preload,), name="preload", daemon=True).start()
        logger.info("serving on %s; preloading %s", self.pool.runtime.device, ", ".join(to_preload))

    def __is_ready__(self) -> bool:
        return self.pool.preloaded.is_set()

    @bentoml.on_shutdown
    def _unload_models(self) -> None:
        self.pool.close()
        if self.transcriber.diarizer is not None:
            self.transcriber.diarizer.unload()

    @bentoml.api(route="/transcribe")
    async def transcribe(
        self,
        file: UploadPath,
        model_id: str | None = None,
        language: str | None = None,
        task: Task = "transcribe",
        word_timestamps: bool = False,
        diarize: bool = False,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> TranscriptionResponse:
        """Transcribe (or translate to English) an audio file with a registry model; with ``diarize``,
        label each segment and word with its speaker."""
        options = TranscribeOptions(language=language, task=task, word_timestamps=word_timestamps)
        try:
            speakers = DiarizeOptions(num_speakers, min_speakers, max_speakers) if diarize else None
            return await anyio.to_thread.run_sync(self.transcriber.transcribe, file, model_id, options, speakers)
        except APIError as exc:
            return error_response(exc)


# Listed outermost first: keys are checked before a byte of the body is read, then its size.
SpeechToText.add_asgi_middleware(ApiKeyMiddleware, keys=get_settings().api_key_list)
SpeechToText.add_asgi_middleware(UploadLimitMiddleware, max_bytes=get_settings().max_upload_bytes)
SpeechToText.add_asgi_middleware(OpenAIErrorMiddleware)
