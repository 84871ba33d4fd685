"""Live transcription against a real ``bentoml serve`` with the official ``openai`` SDK's realtime client:
dev-corpus utterances streamed as 24 kHz PCM (at real time and faster), manual commits, G.711, auth, bad
events, and clients that hang up mid-turn."""

from __future__ import annotations

import audioop
import base64
import socket
import time

import httpx
import numpy as np
import openai
import pytest

from bench.corpus import word_error_rate
from bench.realtime import LEAD_S, open_session, stream_turn
from bench.server import metric_total, running_server
from core.audio import decode_audio

KEY = "sk-realtime-e2e"


@pytest.fixture(scope="module")
def live_server(corpus_dir):
    pytest.importorskip("websockets", reason="the openai SDK's realtime client needs the websockets package")
    with running_server({"STT_API_KEYS": KEY}) as running:
        yield running


@pytest.fixture(scope="module")
def target_server(live_server):
    return live_server


@pytest.fixture(scope="module")
def api_key() -> str:
    return KEY


@pytest.fixture(scope="module")
def utterances(english_short):
    chosen = sorted((u for u in english_short if 3.0 <= u.duration_s <= 9.0), key=lambda u: u.duration_s)[:3]
    if len(chosen) < 3:
        pytest.skip("the corpus has fewer than three English utterances of 3 to 9 s")
    return [(u, decode_audio(u.path)) for u in chosen]


def _file_text(http: httpx.Client, path) -> str:
    with path.open("rb") as f:
        return http.post("/v1/audio/transcriptions", files={"file": f}, data={"model": "whisper-1"}).json()["text"]


def test_real_time_streaming_gives_partials_then_a_transcript_as_good_as_the_file(live_server, http, utterances):
    manager, connection = open_session(live_server.url, KEY)
    try:
        turns = [stream_turn(connection, audio) for _, audio in utterances]
    finally:
        manager.__exit__(None, None, None)
    references = [u.text for u, _ in utterances]
    for (utterance, audio), turn in zip(utterances, turns):
        types = [e.type for e in turn.events if e.type != "input_audio_buffer.cleared"]  # the utterance's end mark
        assert types[0] == "input_audio_buffer.speech_started", types
        assert "input_audio_buffer.committed" in types and types[-1].endswith(".completed"), types
        assert types.index("conversation.item.input_audio_transcription.delta") < types.index(types[-1])
        stopped = turn.of_type("speech_stopped")[0]
        started = turn.of_type("speech_started")[0]
        assert 0 <= started.audio_start_ms <= stopped.audio_end_ms
        assert turn.of_type(".completed")[0].usage.type == "duration"
    # Partial deltas arrive while the speaker is still speaking, before the turn ends.
    assert any(
        [e.type for e in t.events].index("conversation.item.input_audio_transcription.delta")
        < [e.type for e in t.events].index("input_audio_buffer.speech_stopped")
        for t in turns
    )
    # speech_stopped times lie within the audio sent in the session (each turn: lead, speech, 1.2 s tail)
    sent_ms = 0.0
    for (_, audio), turn in zip(utterances, turns):
        turn_end_ms = sent_ms + (LEAD_S + len(audio) / 16_000 + 1.2) * 1000
        assert sent_ms + LEAD_S * 1000 < turn.of_type("speech_stopped")[0].audio_end_ms <= turn_end_ms
        sent_ms += (LEAD_S + len(audio) / 16_000 + 1.2) * 1000
    live = word_error_rate(references, [t.transcript for t in turns])
    files = word_error_rate(references, [_file_text(http, u.path) for u, _ in utterances])
    assert live <= files + 0.05, (live, files, [t.transcript for t in turns])


def test_faster_than_real_time_still_completes_every_turn(live_server, utterances):
    manager, connection = open_session(live_server.url, KEY)
    try:
        turns = [stream_turn(connection, audio, speed=4.0) for _, audio in utterances]
    finally:
        manager.__exit__(None, None, None)
    references = [u.text for u, _ in utterances]
    assert word_error_rate(references, [t.transcript for t in turns]) < 0.2


def test_manual_commits_of_g711_audio(live_server, utterances):
    utterance, audio = utterances[0]
    manager, connection = open_session(live_server.url, KEY)
    try:
        connection.session.update(session={"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcmu"}, "turn_detection": None}}})
        assert connection.recv().type == "session.updated"
        mu_law = audioop.lin2ulaw((np.clip(audio[::2], -1, 1) * 32767).astype("<i2").tobytes(), 2)
        for start in range(0, len(mu_law), 1600):
            connection.input_audio_buffer.append(audio=base64.b64encode(mu_law[start : start + 1600]).decode())
        connection.input_audio_buffer.commit()
        events = []
        while not events or not events[-1].type.endswith((".completed", ".failed")):
            events.append(connection.recv())
    finally:
        manager.__exit__(None, None, None)
    assert "input_audio_buffer.committed" in [e.type for e in events]
    assert word_error_rate([utterance.text], [events[-1].transcript]) < 0.35


def test_bad_events_get_errors_and_the_session_goes_on(live_server, utterances):
    manager, connection = open_session(live_server.url, KEY)
    try:
        connection.send({"type": "response.create"})
        assert connection.recv().error.param == "type"
        connection.send({"type": "input_audio_buffer.append", "audio": "***"})
        assert connection.recv().error.param == "audio"
        connection.send({"type": "input_audio_buffer.commit"})
        assert connection.recv().error.code == "input_audio_buffer_commit_empty"
        turn = stream_turn(connection, utterances[0][1], speed=4.0)
        assert turn.transcript
    finally:
        manager.__exit__(None, None, None)


def test_a_wrong_or_missing_key_is_refused(live_server):
    import websockets

    for key in ("wrong", ""):
        with pytest.raises((websockets.exceptions.InvalidStatus, openai.OpenAIError)):
            manager, _ = open_session(live_server.url, key or "x")
            manager.__exit__(None, None, None)
    # Browsers: the key as a subprotocol; the server answers with "realtime", never the key.
    from websockets.sync.client import connect

    url = live_server.url.replace("http", "ws") + "/v1/realtime?intent=transcription"
    with connect(url, subprotocols=["realtime", f"openai-insecure-api-key.{KEY}"]) as ws:
        assert ws.subprotocol == "realtime"
        assert '"session.created"' in ws.recv(timeout=30)


def test_clients_that_hang_up_mid_turn_leave_nothing_behind(live_server, http, utterances):
    from websockets.sync.client import connect

    import psutil

    url = live_server.url.replace("http", "ws") + "/v1/realtime?intent=transcription"
    audio = utterances[-1][1]
    data = (np.clip(np.repeat(audio, 3)[::2], -1, 1) * 32767).astype("<i2").tobytes()  # 24 kHz, roughly

    def hang_up_mid_turn() -> None:
        ws = connect(url, additional_headers={"Authorization": f"Bearer {KEY}"})
        ws.recv(timeout=30)
        for start in range(0, len(data) * 2 // 3, 9600):  # 200 ms pieces, two thirds of the speech
            ws.send(f'{{"type": "input_audio_buffer.append", "audio": "{base64.b64encode(data[start:start + 9600]).decode()}"}}')
            time.sleep(0.02)
        # Vanish without a closing handshake. shutdown first: close() alone sends nothing while the client's own
        # thread is blocked reading the socket (Linux), so the server would see the client only at its ping timeout.
        ws.socket.shutdown(socket.SHUT_RDWR)
        ws.socket.close()

    def five_hang_ups_then_settle() -> tuple[str, list[dict]]:
        for _ in range(5):
            hang_up_mid_turn()
        deadline = time.monotonic() + 15
        while True:
            metrics = http.get("/metrics").text
            cards = http.get("/v1/models").json()["data"]
            settled = metric_total(metrics, "stt_live_sessions") == 0 and all(c["in_use"] == 0 for c in cards)
            if settled or time.monotonic() > deadline:
                return metrics, cards
            time.sleep(0.5)

    worker = max(psutil.Process(live_server.process.pid).children(recursive=True), key=lambda p: p.memory_info().rss)
    # A first round brings the thread pools and allocator caches to their working size; a leak grows with rounds.
    five_hang_ups_then_settle()
    threads, rss = worker.num_threads(), worker.memory_info().rss
    metrics, cards = five_hang_ups_then_settle()
    assert metric_total(metrics, "stt_live_sessions") == 0
    assert all(card["in_use"] == 0 for card in cards)
    assert worker.num_threads() <= threads + 2
    assert worker.memory_info().rss < rss + 60 * 2**20
