"""A realtime session when its worker drains: the open turn is finalised, its transcript sent, the socket closed with
1001; a new session is refused with 503 and Retry-After."""

from __future__ import annotations

import base64
import time

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from server.collaborators import Collaborators
from server.edge.drain import GOING_AWAY, DrainMiddleware
from tests.fakes import WORDS, FakeModels
from tests.support.audio import silence, tone
from tests.support.transcribers import live_transcriber

URL = "/v1/realtime?intent=transcription"


@pytest.fixture
def collaborators(fake_models: FakeModels) -> Collaborators:
    return Collaborators(live=live_transcriber(fake_models))


def pcm24(audio16k: np.ndarray) -> bytes:
    times = np.arange(int(len(audio16k) * 1.5)) / 24_000
    return (np.interp(times, np.arange(len(audio16k)) / 16_000, audio16k) * 32767).astype("<i2").tobytes()


def test_drain_finalises_the_open_turn_then_closes_with_1001_and_refuses_new_sessions(mounted: Starlette):
    middleware = DrainMiddleware(mounted, timeout_s=10)
    with TestClient(middleware) as client:
        with client.websocket_connect(URL) as ws:
            assert ws.receive_json()["type"] == "session.created"
            data = pcm24(np.concatenate([silence(0.3), tone(2.0)]))  # the speaker has not paused: the turn is open
            for start in range(0, len(data), 4800):
                ws.send_json({"type": "input_audio_buffer.append",
                              "audio": base64.b64encode(data[start : start + 4800]).decode()})
                time.sleep(0.004)
            while ws.receive_json()["type"] != "input_audio_buffer.speech_started":
                pass
            middleware.drain.start()
            events = []
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    events.append(ws.receive_json())
            assert closed.value.code == GOING_AWAY
            completed = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
            assert len(completed) == 1 and completed[0]["transcript"] == " ".join(WORDS[:5])
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect(URL):
                pass
        assert refused.value.status_code == 503 and refused.value.headers["retry-after"] == "1"
