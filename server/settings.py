"""Typed service configuration, read from environment variables prefixed with ``STT_``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STT_", extra="ignore")

    registry_path: Path = Field(
        PROJECT_ROOT / "models.yaml",
        description="The operator's model registry (YAML): the only models a request may name.",
    )
    default_model: str = Field("tiny-en", description="Registry id used when a request names no model.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where models run; auto picks CUDA when a GPU is visible."
    )
    hf_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("STT_HF_TOKEN", "HF_TOKEN"),
        description="Hugging Face token passed to every Hub load (read from HF_TOKEN).",
    )
    hf_cache_dir: Path | None = Field(
        None, description="Hugging Face cache directory; unset means the library default (HF_HOME)."
    )
    max_upload_bytes: int = Field(100 * 2**20, gt=0, description="Largest accepted upload (413 beyond).")
    max_audio_duration_s: float = Field(4 * 3600, gt=0, description="Longest accepted audio (413 beyond).")
    request_timeout_s: float = Field(
        6 * 3600,
        gt=0,
        description="Longest a request may run before it ends with a 504 (BentoML's traffic timeout is a minute more, "
        "a backstop): longer than the longest accepted audio takes on the slowest device you serve.",
    )
    gpu_memory_budget: float = Field(
        0.9, gt=0, description="GPU memory models may hold: a fraction of the device's (<= 1) or bytes (> 1)."
    )
    cpu_memory_budget: float = Field(
        0.5, gt=0, description="RAM models may hold when running on CPU: a fraction of RAM (<= 1) or bytes (> 1)."
    )
    model_idle_ttl_s: float = Field(-1, description="Unload models idle this long (seconds); -1 never.")
    max_inflight_per_model: int = Field(
        0, ge=0, description="Batches one model decodes at once; 0: as many as its engine has workers."
    )
    engine_workers: int = Field(
        0,
        ge=0,
        description="Engine workers per model; 0: the engine's default (CTranslate2 on CPU: one per core, "
        "each with one thread; otherwise 1).",
    )
    max_queued_per_model: int = Field(
        32, ge=0, description="Requests that may wait for a model beyond those its running batches hold; 429 beyond."
    )
    max_batch_size: int = Field(
        0,
        ge=0,
        description="Most 30 s clips one model decodes together, from one long file or many requests; 0: the "
        "engine's default (CTranslate2 on CPU: 1, its workers decode in parallel instead; otherwise 8).",
    )
    max_clips_per_request: int = Field(
        0,
        ge=0,
        description="Clips one request may have queued for its model at a time, so that a long file does not fill "
        "every batch; 0: one per engine worker on CPU (each worker decodes one of the file's clips), the batch "
        "size on GPU.",
    )
    max_batch_wait_ms: float = Field(
        50.0,
        ge=0,
        description="Longest wait for the clips a batch expects (as many as arrived during the previous batch).",
    )
    max_queue_wait_s: float = Field(
        60.0,
        ge=0,
        description="Longest a transcription request may be expected to wait for its model beyond its own decoding, "
        "estimated from the audio admitted before it and the model's measured speed; a request over it gets 429 at "
        "once, with Retry-After. 0: no bound.",
    )
    pin_preloaded: bool = Field(True, description="Preloaded models are never evicted or reaped.")
    api_keys: SecretStr | None = Field(
        None, description="Comma-separated API keys; when set, every route but health checks needs one."
    )
    admin_api: bool = Field(False, description="Enable /v1/admin/models/{id}/load and /unload.")
    diarization_engine: Literal["embedded", "pyannote", "none"] = Field(
        "embedded", description="Speaker diarization: the offline embedded engine, pyannote, or off."
    )
    pyannote_model: str = Field(
        "pyannote/speaker-diarization-3.1", description="pyannote pipeline repo (from the HF cache, with HF_TOKEN)."
    )
    log_level: str = Field("INFO", description="Level of the service's own logs.")
    log_transcripts: bool = Field(False, description="Debug only: put transcripts in the request log lines.")
    model_load_retry_s: float = Field(
        30.0, ge=0, description="After a failed load, answer 503 at once for this long before trying again."
    )
    cpu_threads: int = Field(
        0, ge=0, description="CPU threads per engine worker; 0: the cores this process may run on, shared out."
    )
    max_concurrent_decodes: int = Field(
        0, ge=0, description="Uploads decoded to audio at once; 0: one per core this process may run on."
    )
    audio_memory_budget_mb: float = Field(
        1024,
        gt=0,
        description="Memory (MiB) that decoded audio (16 kHz float32: 230 MB an hour) may take across every request "
        "at once: files, streams, chat audio parts, live sessions. A request reserves its audio's bytes before it "
        "is decoded; when they do not fit it waits up to 5 s, then gets 429 with Retry-After; audio that alone "
        "needs more gets 413. The default holds 4.6 hours: the longest accepted audio, and room beside it.",
    )
    model_self_check: Literal["auto", "on", "off"] = Field(
        "auto",
        description="After loading a model, decode one second of silence with it, so that a model that loads but "
        "cannot run (a CUDA library missing from the image) fails its load, and keeps /readyz at 503, instead of "
        "failing requests; auto: on GPU only.",
    )
    gpu_load_headroom_mb: float = Field(
        1024,
        ge=0,
        description="GPU memory (MiB) a model load must leave free beyond the model's weights, for activations. A "
        "load that would not leave it, in what the GPU really has free, evicts idle models or is refused (503).",
    )
    drain_timeout_s: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM, how long requests in flight and realtime sessions (their turn finalised) may take to "
        "finish while /readyz and new requests get 503; those still running then are cancelled and the worker stops.",
    )
    gpu_count: int = Field(
        1,
        ge=1,
        description="GPUs the service asks for (BentoML resources.gpu) and its worker processes, one per GPU: "
        "worker i serves on visible GPU (i-1) mod n.",
    )

    @property
    def cpu_cores(self) -> int:
        return len(os.sched_getaffinity(0))

    @property
    def decode_slot_count(self) -> int:
        return self.max_concurrent_decodes or self.cpu_cores

    @property
    def api_key_list(self) -> list[str]:
        if self.api_keys is None:
            return []
        return [key.strip() for key in self.api_keys.get_secret_value().split(",") if key.strip()]

    @property
    def hf_token_value(self) -> str | None:
        return self.hf_token.get_secret_value() if self.hf_token else None

    # Live transcription (/v1/realtime).
    realtime_max_session_s: float = Field(
        3600.0, gt=0, description="Longest a realtime session may last; it then gets session_expired and is closed."
    )
    realtime_max_buffer_s: float = Field(
        120.0,
        gt=0,
        description="Uncommitted audio a realtime session may hold: a server-VAD turn this long is ended; "
        "in manual mode, further appends get an error until the client commits or clears. Also the audio of ended "
        "turns a session may have waiting for their transcripts: beyond, appends get an error "
        "(transcription_backlog_full) until one is done.",
    )
    realtime_partial_interval_ms: float = Field(
        300.0, ge=0, description="Shortest time between two partial decodes of one live turn (the fastest cadence)."
    )
    realtime_max_audio_speed: float = Field(
        4.0,
        ge=0,
        description="A realtime session's audio is taken in no faster than this many times real time once "
        "STT_REALTIME_AUDIO_BURST_S is spent: a faster append gets an error (input_audio_too_fast) and is dropped; "
        "0: no bound.",
    )
    realtime_audio_burst_s: float = Field(
        30.0,
        gt=0,
        description="Audio a realtime session may send ahead of that pace at once; one append longer than this gets "
        "an error (input_audio_append_too_large).",
    )
    realtime_max_sessions: int = Field(
        32, ge=0, description="Realtime sessions one worker serves at once; beyond, session_limit_reached. 0: no bound."
    )
    realtime_max_sessions_per_key: int = Field(
        16,
        ge=0,
        description="Realtime sessions one API key may have open at once (per worker); beyond, session_limit_reached. "
        "0: no bound. Without API keys only the server's bound applies.",
    )
    realtime_allowed_origins: str = Field(
        "",
        description="Comma-separated origins of web pages (https://app.example.com) that may open /v1/realtime, "
        "besides the server's own pages and localhost; * allows any. Clients that send no Origin (SDKs) are not "
        "browsers and are always let through.",
    )
    realtime_max_message_mb: float = Field(
        4.0,
        gt=0,
        description="Largest client event (MiB) the realtime socket reads; a bigger message closes the socket with "
        "1009 before it is read. One append carries at most STT_REALTIME_AUDIO_BURST_S of audio (30 s of PCM: 1.9 MB "
        "of base64).",
    )
    realtime_max_send_queue_mb: float = Field(
        4.0,
        gt=0,
        description="Server events (MiB of JSON) that may wait for a realtime client that does not read them; "
        "beyond, its socket is closed with 1008 and a reason.",
    )
    realtime_partial_slots: int = Field(
        0,
        ge=0,
        description="Partial decodes in flight across all live sessions; beyond, partials are skipped until "
        "one returns (finals never are). 0: twice the model's engine workers.",
    )

    # Chat completions (/v1/chat/completions).
    chat_allow_remote_audio_urls: bool = Field(
        False,
        description="Fetch http(s) audio_url parts server-side, only from the hosts STT_FETCH_ALLOWED_HOSTS lists (no "
        "redirects, within the upload limit); off: only input_audio and data: URLs.",
    )
    chat_remote_audio_timeout_s: float = Field(30.0, gt=0, description="Longest a remote audio_url fetch may take.")
    chat_max_audio_parts: int = Field(
        16,
        ge=1,
        description="Audio parts one chat request may carry in all its messages (400 naming messages beyond), counted "
        "before any is decoded: each part is decoded and transcribed on its own.",
    )
    chat_max_audio_s: float = Field(
        0,
        ge=0,
        description="Seconds of audio one chat request may carry in all its parts, added up as they decode (400 "
        "naming messages beyond); 0: STT_MAX_AUDIO_DURATION_S.",
    )
    chat_max_completion_tokens: int = Field(
        4096, ge=1, description="Most tokens a chat model may write per request; also the limit when a request sets none."
    )
    chat_max_text_bytes: int = Field(
        64 * 2**10,
        ge=1,
        description="Text one chat request's messages may carry in all (UTF-8 bytes), refused with 400 naming the "
        "part that goes over before any of it is tokenised.",
    )

    # Asynchronous jobs: OpenAI's Files and Batch APIs (/v1/files, /v1/batches).
    jobs_dir: Path | None = Field(
        None,
        description="The jobs' data directory (a volume in a container): the SQLite database (unless "
        "STT_JOBS_DATABASE_URL) and the uploaded and output files. Unset: /v1/files and /v1/batches are off (404).",
    )
    jobs_database_url: str | None = Field(
        None,
        description="The jobs' database instead of SQLite in STT_JOBS_DIR (postgresql://user@host/db, shared by "
        "replicas that also share STT_JOBS_DIR).",
    )
    jobs_workers: int = Field(
        1,
        ge=0,
        description="Batch lines one replica runs at once (each only when its model has no interactive request "
        "waiting); 0: this replica serves the routes and runs no line.",
    )
    jobs_lease_s: float = Field(
        60.0,
        gt=0,
        description="How long a claimed batch line stays its replica's without a renewal (renewed every third of it "
        "while it runs): the line of a replica that died or restarted runs again after this.",
    )
    jobs_poll_s: float = Field(1.0, gt=0, description="How often an idle batch worker looks for work.")
    jobs_retention_days: float = Field(
        30.0,
        ge=0,
        description="How long an ended batch (its lines, its output and error files) is kept after it ended, then "
        "deleted; 0: until deleted through the API. Uploaded files stay until deleted.",
    )
    jobs_max_batch_lines: int = Field(
        50_000, ge=1, description="Lines one batch's input file may hold (400 naming input_file_id beyond)."
    )
    jobs_max_files: int = Field(
        10_000, ge=1, description="Files the store may hold, uploads and outputs counted (400 beyond: delete some)."
    )
    jobs_url_timeout_s: float = Field(
        30.0, gt=0, description="Longest the fetch of a batch line's audio url may take (no redirects followed)."
    )
    fetch_allowed_hosts: str = Field(
        "",
        description="Comma-separated hosts a batch line's audio url (and a chat audio_url, where allowed) may be fetched "
        "from: names, *.domain, IP addresses, networks (10.0.0.0/8). A name must resolve to public addresses unless "
        "those are listed too; empty: no url is fetched.",
    )
    webhook_urls: str = Field(
        "",
        description="Comma-separated URLs told of each batch's end (batch.completed, .failed, .cancelled, .expired), "
        "signed as Standard Webhooks with STT_WEBHOOK_SECRET; empty: none.",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="The webhooks' signing secret, whsec_ and the key in base64 (needed with STT_WEBHOOK_URLS)."
    )
    webhook_max_attempts: int = Field(
        6, ge=1, description="Attempts to deliver one webhook (1 s before the second, each wait after doubling)."
    )

    @property
    def webhook_url_list(self) -> list[str]:
        return [url.strip() for url in self.webhook_urls.split(",") if url.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
