"""``GET /v1/realtime`` (WebSocket): OpenAI Realtime transcription sessions, as the official SDKs speak them.

One connection is one live session. Client events come in as JSON text frames; server events go out through
one queue, in order. Bad input (malformed JSON, an unknown event, invalid base64, a wrong format) gets an
``error`` event and the session goes on. A client that goes away cancels its decodes at once; a session
longer than ``STT_REALTIME_MAX_SESSION_S`` gets a ``session_expired`` error and is closed. A session over the
server's or the API key's bound on open sessions gets a ``session_limit_reached`` error and is closed (1013). A
browser page of another origin than the allowed ones (``server.realtime.origin``) is refused at the handshake.
Audio faster than the session's pace, or while its transcripts are far behind, is refused append by append (the
session never stops reading: pings travel behind the data); a client that stops reading our events is closed
(``connection.Connection``). When the worker drains (SIGTERM, ``server.edge.drain``), the open turn is finalised,
its transcript sent, and the socket closed with 1001.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, WebSocket
from pydantic import ValidationError

from core.errors import ErrorKind, STTError
from pipeline.live import LiveSession, LiveTranscriber

from ..collaborators import RealtimeSettings, get_live_transcriber, get_realtime_settings
from ..edge.auth import KEY_NAME_SCOPE
from ..edge.drain import GOING_AWAY, SCOPE_KEY, Drain
from ..edge.errors import http_error_response
from ..edge.json_input import load_json
from ..models.names import requested_model
from ..observability.request_log import log_live_session
from .append_decoder import AppendDecoder
from .connection import CLOSE_POLICY_VIOLATION, CLOSE_TRY_AGAIN_LATER, Connection
from .events import domain_error_event, error_event, render, session_event, shown
from .origin import origin_allowed
from .session_config import SessionConfig, SessionUpdateEvent

logger = logging.getLogger("stt.realtime")
router = APIRouter()
SUBPROTOCOL = "realtime"
SESSION_UPDATE_FIELDS = {
    name: f"session.audio.input.transcription.{name}" for name in ("model", "language", "prompt")
}
"""Where a ``session.update`` carries the inputs the preparation checks (the model, the language, the prompt)."""


@router.websocket("/realtime")
async def realtime(
    websocket: WebSocket,
    live: Annotated[LiveTranscriber, Depends(get_live_transcriber)],
    settings: Annotated[RealtimeSettings, Depends(get_realtime_settings)],
    model: str | None = None,
    intent: str | None = None,
) -> None:
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers.get("host"), settings.allowed_origins):
        await _refuse_origin(websocket, origin)
        log_live_session(model=_model_name(live, model), outcome="refused", audio_s=0.0, turns=0, session_s=0.0,
                         error_code="origin_not_allowed")
        return
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    connection = Connection(websocket, settings.max_send_queue_bytes)
    sender = asyncio.create_task(connection.send_all())
    session: LiveSession | None = None
    started, outcome, error_code = time.monotonic(), "failed", None
    try:
        if intent not in (None, "transcription"):
            connection.send(error_event(
                f"Only transcription sessions are served here: connect with intent=transcription, not {shown(intent)}.",
                code="invalid_value", param="intent",
            ))
            outcome, error_code = "refused", "invalid_value"
            return
        config = SessionConfig.new(model, settings.max_session_s)
        try:
            session = LiveSession(
                live, config.live_config(), lambda event: connection.send(render(event)),
                client=websocket.scope.get(KEY_NAME_SCOPE),
            )
        except STTError as exc:  # an unknown model, or too many sessions open
            connection.send(domain_error_event(exc))
            if exc.kind == ErrorKind.OVERLOADED:
                connection.close_code = CLOSE_TRY_AGAIN_LATER
            outcome, error_code = "refused", exc.code
            return
        connection.send(session_event("session.created", config.to_openai()))
        outcome = await _serve_until_done(
            websocket, connection, session, config, settings.max_session_s, websocket.scope.get(SCOPE_KEY)
        )
    except asyncio.CancelledError:  # the server is stopping, or tore the connection down
        outcome = "interrupted"
        raise
    finally:
        if session is not None:
            await session.close()
        log_live_session(
            model=session.model_id if session else _model_name(live, model), outcome=outcome,
            audio_s=session.audio_seconds if session else 0.0, turns=session.turns if session else 0,
            session_s=time.monotonic() - started, error_code=error_code,
        )
        await connection.finish(sender)


def _model_name(live: LiveTranscriber, model: str | None) -> str:
    """The registry id a refused session asked for, as the request log names models."""
    asked = requested_model(model)
    if asked is None:
        return live.default_model
    return asked if asked in live.pool.registry else "unknown"


async def _refuse_origin(websocket: WebSocket, origin: str | None) -> None:
    """403 at the handshake, with OpenAI's error body where the server can send one (else a bare 403)."""
    if "websocket.http.response" not in websocket.scope.get("extensions", {}):
        await websocket.close(CLOSE_POLICY_VIOLATION)
        return
    await websocket.send_denial_response(http_error_response(
        403,
        f"A page of origin {shown(origin)} may not open this socket: only this server's own pages, localhost and "
        "the origins in STT_REALTIME_ALLOWED_ORIGINS may.",
        "invalid_request_error",
        "origin_not_allowed",
    ))


async def _serve_until_done(
    websocket: WebSocket,
    connection: Connection,
    session: LiveSession,
    config: SessionConfig,
    max_session_s: float,
    drain: Drain | None,
) -> str:
    """Serve the client's events until it goes (``closed``), falls behind in reading ours (``fell_behind``), the
    server drains (``drained``: the open turn is finalised and its transcript sent, then the socket closes with
    1001), or the session expires (``expired``); the outcome for the request log."""
    serving = asyncio.create_task(_serve(websocket, connection, session, config))
    behind = asyncio.create_task(connection.fell_behind.wait())
    drained = asyncio.create_task(drain.wait()) if drain is not None else None
    waits = {serving, behind} | ({drained} if drained is not None else set())
    try:
        done, _ = await asyncio.wait(waits, timeout=max_session_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    if serving in done:
        serving.result()
        return "closed"
    if behind in done:
        return "fell_behind"
    if drained in done:
        await session.end()
        connection.close_code = GOING_AWAY
        return "drained"
    connection.send(error_event(
        f"Your session hit the maximum duration of {max_session_s:.0f} seconds.", code="session_expired"
    ))
    return "expired"


async def _serve(websocket: WebSocket, connection: Connection, session: LiveSession, config: SessionConfig) -> None:
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
            event = load_json(message["text"])
        except STTError as exc:
            connection.send(domain_error_event(exc))
            continue
        if not isinstance(event, dict):
            connection.send(error_event("A client event is a JSON object with a 'type'.", code="invalid_value"))
            continue
        event_id = event.get("event_id")
        try:
            config, audio = _handle(event, session, config, audio, connection)
        except STTError as exc:
            fields = SESSION_UPDATE_FIELDS if event.get("type") == "session.update" else {}
            connection.send(domain_error_event(exc, event_id, fields))
        except ValidationError as exc:
            connection.send(_validation_error(exc, event_id))


def _handle(
    event: dict[str, Any], session: LiveSession, config: SessionConfig, audio: AppendDecoder, connection: Connection
) -> tuple[SessionConfig, AppendDecoder]:
    event_type = event.get("type")
    if event_type == "input_audio_buffer.append":
        payload = event.get("audio")
        session.admit_audio(audio.seconds_in(payload))  # or refused: too fast, too long, or the model is behind
        session.append(audio.decode(payload))
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
            f"Invalid value: {shown(event_type)}. Supported client events in a transcription session: {supported}.",
            code="invalid_value", param="type", client_event_id=event.get("event_id"),
        ))
    return config, audio


def _validation_error(exc: ValidationError, event_id: object) -> dict[str, Any]:
    first = exc.errors()[0]
    param = ".".join(str(part) for part in first.get("loc", ()))
    return error_event(f"Invalid value for '{param}': {first.get('msg')}.", code="invalid_value", param=param,
                       client_event_id=event_id)
