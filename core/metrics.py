"""Prometheus metrics, served by BentoML on ``/metrics`` (prometheus_client, multiprocess-aware)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5)

REQUESTS = Counter("stt_requests", "Transcription requests by model and outcome.", ["model", "outcome"])
ERRORS = Counter("stt_errors", "Failed transcription requests by model and error code.", ["model", "code"])
AUDIO_SECONDS = Counter("stt_audio_seconds", "Seconds of audio transcribed.", ["model"])
PROCESSING_SECONDS = Histogram(
    "stt_processing_seconds", "Inference time per request.", ["model"], buckets=_SECONDS_BUCKETS
)
REAL_TIME_FACTOR = Histogram(
    "stt_real_time_factor", "Processing seconds per second of audio.", ["model"], buckets=_RTF_BUCKETS
)
MODEL_LOADS = Counter("stt_model_loads", "Model loads.", ["model"])
MODEL_UNLOADS = Counter("stt_model_unloads", "Model unloads.", ["model", "reason"])
MODEL_LOAD_SECONDS = Histogram("stt_model_load_seconds", "Time to load a model.", ["model"], buckets=_SECONDS_BUCKETS)
BATCH_SIZE = Histogram(
    "stt_batch_size", "Clips decoded together per engine call.", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64)
)
AUDIO_MEMORY_BYTES = Gauge(
    "stt_audio_memory_bytes",
    "Decoded audio that requests and live sessions hold or have reserved (the audio memory budget's use).",
    multiprocess_mode="livesum",
)
QUEUED_CLIPS = Gauge(
    "stt_queued_clips",
    "30 s clips waiting for a model's batcher (not yet in a batch): the queue depth to scale on.",
    ["model"],
    multiprocess_mode="livesum",
)
RESIDENT_BYTES = Gauge(
    "stt_model_resident_bytes", "Estimated memory held by each loaded model.", ["model"], multiprocess_mode="livesum"
)


def record_success(model: str, audio_seconds: float, processing_seconds: float) -> None:
    REQUESTS.labels(model=model, outcome="ok").inc()
    AUDIO_SECONDS.labels(model=model).inc(audio_seconds)
    PROCESSING_SECONDS.labels(model=model).observe(processing_seconds)
    if audio_seconds > 0:
        REAL_TIME_FACTOR.labels(model=model).observe(processing_seconds / audio_seconds)


def record_error(model: str, code: str) -> None:
    REQUESTS.labels(model=model, outcome="error").inc()
    ERRORS.labels(model=model, code=code).inc()

# Live transcription (the Realtime WebSocket route).
LIVE_SESSIONS = Gauge("stt_live_sessions", "Live transcription sessions open now.", multiprocess_mode="livesum")
LIVE_TURNS = Counter("stt_live_turns", "Live turns transcribed, by model and outcome.", ["model", "outcome"])
LIVE_PARTIALS = Counter(
    "stt_live_partials", "Partial decodes of live turns: decoded, skipped (load) or failed.", ["model", "outcome"]
)
LIVE_DELTA_LATENCY = Histogram(
    "stt_live_delta_latency_seconds",
    "From the start of a partial decode (its newest audio) to the delta it confirmed.",
    ["model"],
    buckets=_SECONDS_BUCKETS,
)
LIVE_PARTIAL_INTERVAL = Histogram(
    "stt_live_partial_interval_seconds",
    "Time between the partial decodes of one turn: the cadence reached under load.",
    ["model"],
    buckets=_SECONDS_BUCKETS,
)
LIVE_COMPLETED_LAG = Histogram(
    "stt_live_completed_lag_seconds", "From the end of a turn to its completed transcript.", ["model"], buckets=_SECONDS_BUCKETS
)
