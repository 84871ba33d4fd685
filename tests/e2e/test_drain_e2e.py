"""SIGTERM to a real ``bentoml serve`` during a long streamed request and a live session: ``/readyz`` turns 503
first, new requests and sessions get 503 with Retry-After, the request completes, the session gets its final
transcript and a 1001 close, then the process exits."""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from bench.realtime import to_pcm24
from bench.server import running_server
from core.audio import decode_audio

LONG_FILE = "en/long_ls_to_3080-5032-0000_to_0009_concat.flac"


def stream_transcription(url: str, path: Path, record: dict) -> None:
    with httpx.stream("POST", f"{url}/v1/audio/transcriptions", files={"file": (path.name, path.read_bytes())},
                      data={"stream": "true"}, timeout=600) as response:
        record["status"] = response.status_code
        record["events"] = [json.loads(line[len("data: "):]) for line in response.iter_lines()
                            if line.startswith("data: ") and line != "data: [DONE]"]
    record["finished_at"] = time.monotonic()


def test_sigterm_drains_a_streamed_request_and_a_live_session(corpus_dir: Path, english_short):
    speech = decode_audio(english_short[0].path)
    with running_server({"STT_DEVICE": "cpu", "STT_DRAIN_TIMEOUT_S": "240"}) as server:
        ws_url = server.url.replace("http", "ws") + "/v1/realtime?intent=transcription"
        streamed: dict = {}
        request = threading.Thread(target=stream_transcription, args=(server.url, corpus_dir / LONG_FILE, streamed))
        request.start()
        with connect(ws_url, subprotocols=["realtime"]) as session:
            assert json.loads(session.recv(10))["type"] == "session.created"
            pcm = to_pcm24(np.concatenate([np.zeros(4800, np.float32), speech]))  # no pause after: the turn is open
            for start in range(0, len(pcm), 4800):
                session.send(json.dumps({"type": "input_audio_buffer.append",
                                         "audio": base64.b64encode(pcm[start:start + 4800]).decode()}))
            events = []
            while not any(e["type"] == "input_audio_buffer.speech_started" for e in events):
                events.append(json.loads(session.recv(30)))
            time.sleep(1.0)  # the long request is decoding
            assert "finished_at" not in streamed
            os.killpg(server.process.pid, signal.SIGTERM)
            sigterm_at = time.monotonic()
            while httpx.get(f"{server.url}/readyz", timeout=5).status_code != 503:
                assert time.monotonic() - sigterm_at < 5, "/readyz did not turn 503"
            not_ready_at = time.monotonic()
            refused = httpx.post(f"{server.url}/v1/audio/transcriptions",
                                 files={"file": ("a.flac", english_short[0].path.read_bytes())}, timeout=30)
            assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["code"] == "server_shutting_down"
            with pytest.raises(InvalidStatus) as new_session:
                connect(ws_url, open_timeout=10)
            assert new_session.value.response.status_code == 503
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    events.append(json.loads(session.recv(120)))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        completed = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
        assert len(completed) == 1 and completed[0]["transcript"].strip()
        request.join(300)
        assert streamed["status"] == 200 and streamed["events"][-1]["type"] == "transcript.text.done"
        assert streamed["events"][-1]["text"].strip()
        assert not_ready_at < streamed["finished_at"]
        assert server.process.wait(60) == 0
