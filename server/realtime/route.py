"""``GET /v1/realtime`` (WebSocket): OpenAI Realtime transcription sessions, as the official SDKs speak them.

One connection is one live session. Client events come in as JSON text frames; server events go out through
one queue, in order. Bad input (malformed JSON, an unknown event, invalid base64, a wrong format) gets an
``error`` event and the session goes on. A client that goes away cancels its decodes at once; a session
longer than ``STT_REALTIME_MAX_SESSION_S`` gets a ``session_expired`` error and is closed. When the worker drains
(SIGTERM, ``server.edge.drain``), the open turn is finalised, its transcript sent, and the socket closed with 1001.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, WebSocket
from pydantic import ValidationError

from core.errors import STTError
from pipeline.live import LiveSession, LiveTranscriber

from ..collaborators import RealtimeSettings, get_live_transcriber, get_realtime_settings
from ..edge.drain import GOING_AWAY, SCOPE_KEY, Drain
from .append_decoder import AppendDecoder
from .events import domain_error_event, error_event, render, session_event
from .session_config import SessionConfig, SessionUpdateEvent

logger = logging.getLogger("stt.realtime")
router = APIRouter()
SUBPROTOCOL = "realtime"
CLOSE_POLICY_VIOLATION = 1008


@router.websocket("/realtime")
async def realtime(
    websocket: WebSocket,
    live: Annotated[LiveTranscriber, Depends(get_live_transcriber)],
    settings: Annotated[RealtimeSettings, Depends(get_realtime_settings)],
    model: str | None = None,
    intent: str | None = None,
) -> None:
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    connection = _Connection(websocket)
    sender = asyncio.create_task(connection.send_all())
    session: LiveSession | None = None
    close_code = 1000
    try:
        if intent not in (None, "transcription"):
            connection.send(error_event(
                f"Only transcription sessions are served here: connect with intent=transcription, not {intent!r}.",
                code="invalid_value", param="intent",
            ))
            return
        config = SessionConfig.new(model, settings.max_session_s)
        try:
            session = LiveSession(live, config.live_config(), lambda event: connection.send(render(event)))
        except STTError as exc:
            connection.send(domain_error_event(exc))
            return
        connection.send(session_event("session.created", config.to_openai()))
        try:
            serving = _serve(websocket, connection, session, config)
            if await asyncio.wait_for(_until_drained(serving, session, websocket.scope.get(SCOPE_KEY)),
                                      settings.max_session_s):
                close_code = GOING_AWAY
        except TimeoutError:
            connection.send(error_event(
                f"Your session hit the maximum duration of {settings.max_session_s:.0f} seconds.",
                code="session_expired",
            ))
    finally:
        if session is not None:
            await session.close()
        await connection.finish(sender, close_code)


async def _until_drained(serving: Coroutine[Any, Any, None], session: LiveSession, drain: Drain | None) -> bool:
    """Serve the session until the client leaves (False), or until the server drains (True): then its open turn is
    finalised and its transcript sent before the socket closes."""
    if drain is None:
        await serving
        return False
    served, drained = asyncio.ensure_future(serving), asyncio.ensure_future(drain.wait())
    try:
        await asyncio.wait({served, drained}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        drained.cancel()
    if served.done():
        served.result()
        return False
    served.cancel()
    await asyncio.gather(served, return_exceptions=True)
    await session.end()
    return True


async def _serve(websocket: WebSocket, connection: _Connection, session: LiveSession, config: SessionConfig) -> None:
    audio = AppendDecoder(config.format)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            connection.gone = True
            return
        if message.get("text") is None:
            connection.send(error_event("Send client events as JSON text frames, not binary.", code="invalid_value"))
            continue
        try:
            event = json.loads(message["text"])
        except json.JSONDecodeError as exc:
            connection.send(error_event(f"The event is not valid JSON: {exc}.", code="invalid_json"))
            continue
        if not isinstance(event, dict):
            connection.send(error_event("A client event is a JSON object with a 'type'.", code="invalid_value"))
            continue
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        try:
            config, audio = _handle(event, session, config, audio, connection)
        except STTError as exc:
            connection.send(domain_error_event(exc, event_id))
        except ValidationError as exc:
            connection.send(_validation_error(exc, event_id))


def _handle(
    event: dict[str, Any], session: LiveSession, config: SessionConfig, audio: AppendDecoder, connection: _Connection
) -> tuple[SessionConfig, AppendDecoder]:
    event_type = event.get("type")
    if event_type == "input_audio_buffer.append":
        session.append(audio.decode(event.get("audio")))
    elif event_type == "input_audio_buffer.commit":
        session.commit()
    elif event_type == "input_audio_buffer.clear":
        session.clear()
    elif event_type == "session.update":
        update = SessionUpdateEvent.model_validate(event)
        new_config = config.updated(update.session)
        session.configure(new_config.live_config())  # raises, changing nothing, for an unknown model or language
        if new_config.format != audio.format:
            audio = AppendDecoder(new_config.format)
        config = new_config
        connection.send(session_event("session.updated", config.to_openai()))
    else:
        supported = "session.update, input_audio_buffer.append, input_audio_buffer.commit, input_audio_buffer.clear"
        connection.send(error_event(
            f"Invalid value: {event_type!r}. Supported client events in a transcription session: {supported}.",
            code="invalid_value", param="type", client_event_id=event.get("event_id"),
        ))
    return config, audio


def _validation_error(exc: ValidationError, event_id: str | None) -> dict[str, Any]:
    first = exc.errors()[0]
    param = ".".join(str(part) for part in first.get("loc", ()))
    return error_event(f"Invalid value for '{param}': {first.get('msg')}.", code="invalid_value", param=param,
                       client_event_id=event_id)


class _Connection:
    """Server events go out in order through one queue; a client that stops reading stops nothing else."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.gone = False

    def send(self, event: dict[str, Any]) -> None:
        self._queue.put_nowait(event)

    async def send_all(self) -> None:
        while (event := await self._queue.get()) is not None:
            if self.gone:
                continue
            try:
                await self._websocket.send_text(json.dumps(event))
            except Exception:  # the client went away mid-send
                self.gone = True

    async def finish(self, sender: asyncio.Task, code: int = 1000) -> None:
        """Send what is queued, then close the connection with ``code`` (unless the client already did)."""
        self._queue.put_nowait(None)
        try:
            await sender
        finally:
            if not self.gone:
                try:
                    await self._websocket.close(code)
                except Exception:
                    pass
