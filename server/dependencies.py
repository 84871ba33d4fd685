"""What the routes are given by injection (FastAPI ``Depends``): the transcriber, the live transcriber (for
realtime sessions) and the route settings.

The ``/v1`` app exists when the module is imported (BentoML mounts it on the service class); the service
binds the real collaborators when it starts, through FastAPI's dependency overrides.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

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


def get_transcriber() -> Transcriber:
    raise RuntimeError("the service has not bound a transcriber to the routes")


def get_live_transcriber() -> LiveTranscriber:
    raise RuntimeError("the service has not bound a live transcriber to the routes")


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
) -> None:
    app.dependency_overrides[get_transcriber] = lambda: transcriber
    app.dependency_overrides[get_route_settings] = lambda: settings
    if live is not None:
        app.dependency_overrides[get_live_transcriber] = lambda: live
    if realtime is not None:
        app.dependency_overrides[get_realtime_settings] = lambda: realtime
