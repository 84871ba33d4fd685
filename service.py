"""The speech-to-text BentoML service: one class, the models loaded at startup, every route on one pool."""

from __future__ import annotations

import os

# Before any engine loads its OpenMP runtime: CTranslate2 and torch each bring one, and their spinning idle
# threads starve each other's workers in one process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# numpy's OpenBLAS (feature extraction, VAD, diarization) would otherwise start a thread per core that spins
# after every call, taking a core from the engine workers: parallelism here comes from the workers.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import logging  # noqa: E402
import threading  # noqa: E402

import bentoml  # noqa: E402

from core.devices import pin_worker_to_gpu  # noqa: E402
from server.settings import get_settings  # noqa: E402

settings = get_settings()
# One worker per GPU: narrow CUDA_VISIBLE_DEVICES to this worker's GPU before anything can initialise CUDA,
# which reads it once. BentoML shows every worker all the service's GPUs (resources.gpu).
WORKER_GPU = pin_worker_to_gpu(bentoml.server_context.worker_index, settings.device)

from starlette.responses import JSONResponse  # noqa: E402

from core.types import Task
from server.audio.transcribe_route import TranscribeForm, TranscribeResponse, transcribe_upload
from server.collaborators import Collaborators, RouteSettings, bind
from server.edge.auth import ApiKeyMiddleware, open_access_warning
from server.edge.drain import Drain, DrainMiddleware
from server.edge.error_middleware import OpenAIErrorMiddleware
from server.edge.upload_limit import UploadLimitMiddleware
from server.edge.websocket_limits import limit_websocket_messages
from server.edge.uploads import UploadPath
from server.observability import request_log
from server.openai_app import create_openai_app
from server.web.page import app as web_page_app
from server.wiring import (  # noqa: E402
    build_chat, build_jobs_from_settings, build_live_transcriber, build_transcriber, build_webhook_sender,
    models_to_preload,
)

logger = logging.getLogger("stt.service")
# Before BentoML's worker builds uvicorn's configuration: the largest WebSocket message uvicorn reads.
limit_websocket_messages(int(settings.realtime_max_message_mb * 2**20))
# The /v1 app, mounted on the class below; the service binds its collaborators when it starts.
openai_app = create_openai_app()
# This worker's drain (SIGTERM): the middleware refuses new requests, the batch worker stops claiming lines.
drain = Drain(settings.drain_timeout_s)


@bentoml.service(
    name="speech-to-text",
    # One worker process per GPU, each pinned to its own (WORKER_GPU); one GPU and one worker by default.
    resources={"gpu": settings.gpu_count},
    # A backstop only: requests end themselves at STT_REQUEST_TIMEOUT_S, with an OpenAI-shaped 504.
    traffic={"timeout": settings.request_timeout_s + 60},
    workers=settings.gpu_count,
)
@bentoml.asgi_app(openai_app, path="/v1")
# The try-it page at / (BentoML's own Swagger page, otherwise there, moves to /docs).
@bentoml.asgi_app(web_page_app, path="/")
class SpeechToText:
    def __init__(self) -> None:
        request_log.configure(settings.log_level)
        if warning := open_access_warning(settings.api_key_list):
            logger.warning(warning)
        self.transcriber = build_transcriber(settings)
        self.pool = self.transcriber.pool
        self.route_settings = RouteSettings(settings.admin_api, settings.log_transcripts, settings.request_timeout_s)
        live, realtime_settings = build_live_transcriber(self.transcriber, settings)
        chat, chat_settings = build_chat(self.transcriber, settings)
        self.webhooks = build_webhook_sender(settings)
        self.jobs = build_jobs_from_settings(
            self.transcriber, settings, should_claim=lambda: not drain.draining, webhooks=self.webhooks
        )
        bind(openai_app, Collaborators(
            transcriber=self.transcriber, live=live, chat=chat, route_settings=self.route_settings,
            realtime_settings=realtime_settings, chat_settings=chat_settings, jobs=self.jobs,
            batch_webhooks=self.webhooks,
        ))
        if self.jobs is not None and settings.jobs_workers > 0:
            self.jobs.worker.start()
        # Preload in the background so /livez answers at once while /readyz stays 503 until models are in memory.
        to_preload = models_to_preload(self.transcriber)
        threading.Thread(target=self.pool.preload, args=(to_preload,), name="preload", daemon=True).start()
        device = self.pool.runtime.device
        if WORKER_GPU is not None:
            device = f"{device} (GPU {WORKER_GPU}, worker {bentoml.server_context.worker_index})"
        logger.info("serving on %s; preloading %s", device, ", ".join(to_preload))

    def __is_ready__(self) -> bool:
        return self.pool.is_ready()

    @bentoml.on_shutdown
    def _unload_models(self) -> None:
        if self.jobs is not None:  # the lines running finish (or run again elsewhere once their lease passes)
            self.jobs.worker.stop(timeout_s=settings.drain_timeout_s)
        if self.webhooks is not None:  # deliveries still waiting for a retry are dropped (held in memory)
            self.webhooks.close()
        self.pool.close()

    @bentoml.api(route="/transcribe")
    async def transcribe(
        self,
        ctx: bentoml.Context,
        file: UploadPath,
        model_id: str | None = None,
        language: str | None = None,
        task: Task = "transcribe",
        word_timestamps: bool = False,
        diarize: bool = False,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> TranscribeResponse:
        """Transcribe (or translate to English) an audio file with a registry model; with ``diarize``,
        label each segment and word with its speaker."""
        form = TranscribeForm(
            model_id, language, task, word_timestamps, diarize, num_speakers, min_speakers, max_speakers
        )
        response: TranscribeResponse | JSONResponse = await transcribe_upload(
            ctx.request, self.transcriber, self.route_settings, file, form
        )
        if isinstance(response, JSONResponse):  # an error: BentoML takes the status from the context
            ctx.response.status_code = response.status_code
        return response  # type: ignore[return-value]


# Listed outermost first: a draining worker refuses before anything else; keys are checked before a byte of the body
# is read, then its size.
SpeechToText.add_asgi_middleware(DrainMiddleware, timeout_s=settings.drain_timeout_s, drain=drain)
SpeechToText.add_asgi_middleware(ApiKeyMiddleware, keys=settings.api_key_list)
SpeechToText.add_asgi_middleware(UploadLimitMiddleware, max_bytes=settings.max_upload_bytes)
SpeechToText.add_asgi_middleware(OpenAIErrorMiddleware)
