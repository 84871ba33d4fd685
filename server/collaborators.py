"""What the ``/v1`` routes work with: the transcriber, the live transcriber (realtime sessions), the chat flow and
each route's settings, carried in one ``Collaborators`` on the app's ``state``, and one FastAPI dependency each.

The service creates the ``/v1`` app when its module is imported (BentoML mounts it on the service class) and binds
the collaborators when it starts; tests build their own app with theirs (``create_openai_app``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from pipeline.chat import Chat
from pipeline.jobs.jobs import Jobs
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
    max_send_queue_bytes: int = 4 * 2**20
    """Server events that may wait for a client that does not read them; beyond, its socket is closed (1008)."""
    allowed_origins: tuple[str, ...] = ()
    """Web pages that may open the socket besides the server's own and localhost's (``*``: any)."""


@dataclass(frozen=True)
class ChatSettings:
    max_audio_bytes: int = 100 * 2**20
    """Audio one request may carry once decoded from base64: the upload limit (``STT_MAX_UPLOAD_BYTES``)."""
    allow_remote_audio_urls: bool = False
    remote_audio_timeout_s: float = 30.0
    fetch_allowed_hosts: str = ""
    """The hosts remote audio URLs may be fetched from, as the operator wrote them (``STT_FETCH_ALLOWED_HOSTS``,
    read by ``edge.allowed_hosts``); none by default."""
    max_completion_tokens: int = 4096
    """The most tokens a chat model may write for one request, and what it may write when the request says none."""
    max_text_bytes: int = 64 * 2**10
    """Text one request's messages may carry in all, in UTF-8 (``STT_CHAT_MAX_TEXT_BYTES``)."""


class BatchWebhooks(Protocol):
    """The batches' webhooks as the routes see them (``server.batches.webhooks.WebhookSender``)."""

    def check_batch_url(self, url: object) -> None:
        """Refuse a batch's own webhook URL the server may not call (``InvalidInputError`` naming ``metadata``)."""
        ...


@dataclass(frozen=True)
class Collaborators:
    """Everything the routes work with. A route whose collaborator is missing fails; settings left out are the
    defaults."""

    transcriber: Transcriber | None = None
    live: LiveTranscriber | None = None
    chat: Chat | None = None
    route_settings: RouteSettings = RouteSettings()
    realtime_settings: RealtimeSettings = RealtimeSettings()
    chat_settings: ChatSettings = ChatSettings()
    jobs: Jobs | None = None
    """The Files and Batch APIs' stores and worker; None: those APIs are off (no ``STT_JOBS_DIR``)."""
    batch_webhooks: BatchWebhooks | None = None
    """The batches' webhooks; None: the server signs none (no ``STT_WEBHOOK_SECRET``)."""


def bind(app: FastAPI, collaborators: Collaborators) -> None:
    """Give ``app``'s routes their collaborators."""
    app.state.collaborators = collaborators


def bound(connection: HTTPConnection) -> Collaborators:
    return getattr(connection.app.state, "collaborators", None) or Collaborators()


def get_transcriber(connection: HTTPConnection) -> Transcriber:
    if (transcriber := bound(connection).transcriber) is None:
        raise RuntimeError("the service has not bound a transcriber to the routes")
    return transcriber


def get_live_transcriber(connection: HTTPConnection) -> LiveTranscriber:
    if (live := bound(connection).live) is None:
        raise RuntimeError("the service has not bound a live transcriber to the routes")
    return live


def get_chat(connection: HTTPConnection) -> Chat:
    if (chat := bound(connection).chat) is None:
        raise RuntimeError("the service has not bound a chat flow to the routes")
    return chat


def get_route_settings(connection: HTTPConnection) -> RouteSettings:
    return bound(connection).route_settings


def get_realtime_settings(connection: HTTPConnection) -> RealtimeSettings:
    return bound(connection).realtime_settings


def get_chat_settings(connection: HTTPConnection) -> ChatSettings:
    return bound(connection).chat_settings


TranscriberDep = Annotated[Transcriber, Depends(get_transcriber)]
RouteSettingsDep = Annotated[RouteSettings, Depends(get_route_settings)]
