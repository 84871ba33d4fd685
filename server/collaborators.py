"""What the routes are given by injection (FastAPI ``Depends``): the transcriber, the live transcriber (for
realtime sessions), the chat flow and the settings of each route.

The ``/v1`` app exists when the module is imported (BentoML mounts it on the service class); the service
binds the real collaborators when it starts, through FastAPI's dependency overrides.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from pipeline.chat import Chat
from pipeline.live import LiveLimits, LiveTranscriber
from pipeline.transcriber import Transcriber


@dataclass(frozen=True)
class RouteSettings:
    admin_api: bool = False
    log_transcripts: bool = False
    request_timeout_s: float = 6 * 3600


@dataclass(frozen=True)
class RealtimeSettings:
    max_session_s: float = 3600.0
    limits: LiveLimits = LiveLimits()


@dataclass(frozen=True)
class ChatSettings:
    max_audio_bytes: int = 100 * 2**20
    """Audio one request may carry once decoded from base64: the upload limit (``STT_MAX_UPLOAD_BYTES``)."""
    allow_remote_audio_urls: bool = False
    remote_audio_timeout_s: float = 30.0
    max_completion_tokens: int = 4096
    """The most tokens a chat model may write for one request, and what it may write when the request says none."""


def get_transcriber() -> Transcriber:
    raise RuntimeError("the service has not bound a transcriber to the routes")


def get_live_transcriber() -> LiveTranscriber:
    raise RuntimeError("the service has not bound a live transcriber to the routes")


def get_chat() -> Chat:
    raise RuntimeError("the service has not bound a chat flow to the routes")


def get_chat_settings() -> ChatSettings:
    return ChatSettings()


def get_route_settings() -> RouteSettings:
    return RouteSettings()


def get_realtime_settings() -> RealtimeSettings:
    return RealtimeSettings()


def bind(
    app: FastAPI,
    transcriber: Transcriber,
    settings: RouteSettings,
    live: LiveTranscriber | None = None,
    realtime: RealtimeSettings | None = None,
    chat: Chat | None = None,
    chat_settings: ChatSettings | None = None,
) -> None:
    app.dependency_overrides[get_transcriber] = lambda: transcriber
    app.dependency_overrides[get_route_settings] = lambda: settings
    if live is not None:
        app.dependency_overrides[get_live_transcriber] = lambda: live
    if realtime is not None:
        app.dependency_overrides[get_realtime_settings] = lambda: realtime
    if chat is not None:
        app.dependency_overrides[get_chat] = lambda: chat
    if chat_settings is not None:
        app.dependency_overrides[get_chat_settings] = lambda: chat_settings
