"""Builds, from the settings, the transcriber (through ``pipeline.factory``, which the bulk runner shares), the
live transcriber of realtime sessions and the chat flow."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.chat import Chat, ChatLimits
from pipeline.jobs.batches import BatchLimits
from pipeline.jobs.files import FileLimits, FileStore
from pipeline.jobs.jobs import Jobs, JobsConfig, build_jobs
from pipeline.jobs.worker import WorkerSettings
from pipeline.factory import build_transcriber, diarizer_spec, models_to_preload, self_check_enabled
from pipeline.live import LiveLimits, LiveTranscriber
from pipeline.transcriber import Transcriber

from .batches.item_runner import AudioItemRunner, RunnerSettings
from .batches.webhooks import BATCH_WEBHOOK_KEY, WebhookSender, WebhookSettings
from .collaborators import ChatSettings, RealtimeSettings
from .edge.allowed_hosts import AllowedHosts
from .realtime.origin import allowed_origins
from .settings import Settings

# The transcriber's factory moved down to the pipeline (the bulk runner builds one without the server); the service
# and the tests still find it here.
__all__ = [
    "build_chat", "build_jobs_from_settings", "build_live_transcriber", "build_transcriber", "build_webhook_sender",
    "diarizer_spec", "models_to_preload", "self_check_enabled",
]


def build_live_transcriber(transcriber: Transcriber, settings: Settings) -> tuple[LiveTranscriber, RealtimeSettings]:
    """What every realtime session shares (the transcriber's pool and default model), and its limits."""
    realtime = RealtimeSettings(
        max_session_s=settings.realtime_max_session_s,
        limits=LiveLimits(
            partial_interval_s=settings.realtime_partial_interval_ms / 1000,
            partial_slots=settings.realtime_partial_slots,
            max_buffer_s=settings.realtime_max_buffer_s,
            max_audio_speed=settings.realtime_max_audio_speed,
            audio_burst_s=settings.realtime_audio_burst_s,
            max_sessions=settings.realtime_max_sessions,
            max_sessions_per_client=settings.realtime_max_sessions_per_key,
        ),
        max_send_queue_bytes=int(settings.realtime_max_send_queue_mb * 2**20),
        allowed_origins=allowed_origins(settings.realtime_allowed_origins),
    )
    live = LiveTranscriber(
        transcriber.pool, transcriber.default_model, realtime.limits, audio_budget=transcriber.audio_budget
    )
    return live, realtime


def build_chat(transcriber: Transcriber, settings: Settings) -> tuple[Chat, ChatSettings]:
    """Chat completions on the transcriber's models, and the route's limits."""
    chat_settings = ChatSettings(
        max_audio_bytes=settings.max_upload_bytes,
        allow_remote_audio_urls=settings.chat_allow_remote_audio_urls,
        remote_audio_timeout_s=settings.chat_remote_audio_timeout_s,
        fetch_allowed_hosts=settings.fetch_allowed_hosts,
        max_completion_tokens=settings.chat_max_completion_tokens,
        max_text_bytes=settings.chat_max_text_bytes,
    )
    limits = ChatLimits(
        max_audio_parts=settings.chat_max_audio_parts,
        max_audio_s=settings.chat_max_audio_s or settings.max_audio_duration_s,
    )
    return Chat(transcriber, limits), chat_settings


def build_jobs_from_settings(
    transcriber: Transcriber,
    settings: Settings,
    should_claim: Callable[[], bool] = lambda: True,
    webhooks: WebhookSender | None = None,
) -> Jobs | None:
    """The Files and Batch APIs' stores and worker (not started); None when ``STT_JOBS_DIR`` is unset. Each batch
    that ends is told to ``webhooks`` (with the batch's own URL, when its metadata names one)."""
    if settings.jobs_dir is None:
        return None
    config = JobsConfig(
        directory=settings.jobs_dir,
        database_url=settings.jobs_database_url,
        files=FileLimits(max_bytes=settings.max_upload_bytes, max_files=settings.jobs_max_files),
        batches=BatchLimits(
            max_lines=settings.jobs_max_batch_lines, lease_s=settings.jobs_lease_s,
            retention_s=settings.jobs_retention_days * 86400 or None,
        ),
        worker=WorkerSettings(workers=settings.jobs_workers, poll_s=settings.jobs_poll_s),
    )
    runner = RunnerSettings(settings.max_upload_bytes, settings.jobs_url_timeout_s, settings.request_timeout_s,
                            AllowedHosts.parse(settings.fetch_allowed_hosts))

    def runner_for(files: FileStore) -> AudioItemRunner:
        return AudioItemRunner(transcriber, files, runner)

    def on_ended(batch_id: str, status: str) -> None:
        if webhooks is not None:
            metadata = jobs.batches.get(batch_id).meta or {}
            webhooks.batch_ended(batch_id, status, metadata.get(BATCH_WEBHOOK_KEY))

    jobs = build_jobs(config, runner_for, should_claim, on_ended)
    return jobs


def build_webhook_sender(settings: Settings) -> WebhookSender | None:
    """The batches' webhooks: to ``STT_WEBHOOK_URLS`` and to each batch's own URL (an allowed host's); None without
    ``STT_WEBHOOK_SECRET``, which signs them (URLs without it are refused at start)."""
    urls = settings.webhook_url_list
    if settings.webhook_secret is None:
        if urls:
            raise ValueError("STT_WEBHOOK_URLS needs STT_WEBHOOK_SECRET (whsec_ and a key in base64) to sign with")
        return None
    return WebhookSender(WebhookSettings(
        urls=tuple(urls), secret=settings.webhook_secret.get_secret_value(),
        allowed_hosts=AllowedHosts.parse(settings.fetch_allowed_hosts), max_attempts=settings.webhook_max_attempts,
    ))
