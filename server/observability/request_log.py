"""One JSON line per transcription request (id, model, audio and processing seconds, status), and one per live
session when it ends (model, seconds of audio, turns, how it ended).

Transcripts and audio never appear unless the operator turns on ``STT_LOG_TRANSCRIPTS`` for debugging.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

logger = logging.getLogger("stt.requests")


# The service's own loggers: the request log, and each layer's modules (named after their packages).
SERVICE_LOGGERS = ("stt", "server", "pipeline", "strategies", "core")


def configure(level: str = "INFO") -> None:
    """Send the service's loggers to stderr, where ``bentoml serve`` collects worker output."""
    for name in SERVICE_LOGGERS:
        root = logging.getLogger(name)
        root.setLevel(level)
        if not any(getattr(h, "_stt", False) for h in root.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] [%(name)s] %(message)s"))
            handler._stt = True  # type: ignore[attr-defined]
            root.addHandler(handler)
        root.propagate = False


def current_request_id() -> str | None:
    try:
        from bentoml._internal.context import trace_context
    except ImportError:
        return None
    request_id = trace_context.request_id
    return str(request_id) if request_id is not None else None


def log_request(
    *,
    model: str,
    status: int,
    audio_s: float | None = None,
    processing_s: float | None = None,
    error_code: str | None = None,
    text: str | None = None,
) -> None:
    record: dict[str, Any] = {
        "event": "transcription",
        "request_id": current_request_id(),
        "model": model,
        "status": status,
        "audio_s": round(audio_s, 3) if audio_s is not None else None,
        "processing_s": round(processing_s, 3) if processing_s is not None else None,
    }
    if error_code:
        record["error_code"] = error_code
    if text is not None:
        record["text"] = text
    logger.info(json.dumps(record, ensure_ascii=False))


def log_live_session(
    *, model: str, outcome: str, audio_s: float, turns: int, session_s: float, error_code: str | None = None
) -> None:
    """A realtime session has ended: ``outcome`` says how (``closed`` by the client, ``expired``, ``fell_behind``
    when the client stopped reading, ``refused`` before it started, ``drained`` when the server stopped gracefully,
    ``interrupted`` when it tore the session down, ``failed`` by an error of the server's)."""
    record: dict[str, Any] = {
        "event": "realtime_session",
        "model": model,
        "outcome": outcome,
        "audio_s": round(audio_s, 3),
        "turns": turns,
        "session_s": round(session_s, 3),
    }
    if error_code:
        record["error_code"] = error_code
    logger.info(json.dumps(record, ensure_ascii=False))
