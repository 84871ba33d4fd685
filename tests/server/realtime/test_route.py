"""The Realtime WebSocket route on a fake engine, every server event checked against the ``openai``
package's own types (the specification): session events, turns, errors for bad input, G.711, auth."""

from __future__ import annotations

import audioop
import base64
import json
import logging
import time

import numpy as np
import pytest
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeErrorEvent,
    RealtimeTranscriptionSessionCreateRequest,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from server.collaborators import Collaborators
from server.edge.auth import ApiKeyMiddleware
from tests.fakes import WORDS, FakeModels
from tests.support.audio import silence, tone
from tests.support.transcribers import live_transcriber

SERVER_EVENTS = {
    "session.created": SessionCreatedEvent,
    "session.updated": SessionUpdatedEvent,
    "input_audio_buffer.speech_started": InputAudioBufferSpeechStartedEvent,
    "input_audio_buffer.speech_stopped": InputAudioBufferSpeechStoppedEvent,
    "input_audio_buffer.committed": InputAudioBufferCommittedEvent,
    "input_audio_buffer.cleared": InputAudioBufferClearedEvent,
    "conversation.item.input_audio_transcription.delta": ConversationItemInputAudioTranscriptionDeltaEvent,
    "conversation.item.input_audio_transcription.completed": ConversationItemInputAudioTranscriptionCompletedEvent,
    "conversation.item.input_audio_transcription.failed": ConversationItemInputAudioTranscriptionFailedEvent,
    "error": RealtimeErrorEvent,
}


def checked(event: dict) -> dict:
    """The event, after validating it against the openai package's type for it."""
    SERVER_EVENTS[event["type"]].model_validate(event)
    if event["type"].startswith("session."):
        RealtimeTranscriptionSessionCreateRequest.model_validate(event["session"])
    return event


@pytest.fixture
def collaborators(fake_models: FakeModels) -> Collaborators:
    return Collaborators(live=live_transcriber(fake_models))


URL = "/v1/realtime?intent=transcription"


def pcm24(audio16k: np.ndarray) -> np.ndarray:
    """16 kHz float to 24 kHz int16 (linear interpolation is enough for a tone)."""
    times = np.arange(int(len(audio16k) * 1.5)) / 24_000
    return (np.interp(times, np.arange(len(audio16k)) / 16_000, audio16k) * 32767).astype("<i2")


def speech(seconds: float, before: float = 0.3, after: float = 1.0) -> np.ndarray:
    return np.concatenate([silence(before), tone(seconds), silence(after)])


def send_audio(ws, data: bytes, chunk_bytes: int, pause_s: float = 0.004) -> None:
    for start in range(0, len(data), chunk_bytes):
        ws.send_json({"type": "input_audio_buffer.append", "audio": base64.b64encode(data[start : start + chunk_bytes]).decode()})
        time.sleep(pause_s)


def events_until(ws, event_type: str, limit: int = 500) -> list[dict]:
    events = []
    for _ in range(limit):
        events.append(checked(ws.receive_json()))
        if events[-1]["type"] == event_type:
            return events
    raise AssertionError(f"no {event_type} in {[e['type'] for e in events]}")


def test_session_created_and_updated_follow_the_openai_types(http):
    with http.websocket_connect(URL, subprotocols=["realtime"]) as ws:
        assert ws.accepted_subprotocol == "realtime"
        created = checked(ws.receive_json())
        assert created["type"] == "session.created"
        session = created["session"]
        assert session["type"] == "transcription" and session["id"].startswith("sess_")
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        ws.send_json({
            "type": "session.update",
            "session": {"type": "transcription", "audio": {"input": {
                "format": {"type": "audio/pcmu"},
                "transcription": {"model": "talker", "language": "en", "prompt": "foxes"},
                "turn_detection": None,
                "noise_reduction": {"type": "near_field"},
            }}},
        })
        updated = checked(ws.receive_json())["session"]["audio"]["input"]
        assert updated["format"] == {"type": "audio/pcmu"} and updated["turn_detection"] is None
        assert updated["transcription"] == {"model": "talker", "language": "en", "prompt": "foxes"}
        ws.send_json({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 700}}}}})
        detection = checked(ws.receive_json())["session"]["audio"]["input"]["turn_detection"]
        assert detection == {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 700}


def test_a_spoken_turn_streams_deltas_then_completes_with_usage(http):
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        send_audio(ws, pcm24(speech(2.0)).tobytes(), chunk_bytes=4800)  # 100 ms per append
        events = events_until(ws, "conversation.item.input_audio_transcription.completed")
    types = [e["type"] for e in events]
    assert types[0] == "input_audio_buffer.speech_started"
    assert types.index("input_audio_buffer.speech_stopped") < types.index("input_audio_buffer.committed")
    deltas = [e["delta"] for e in events if e["type"].endswith(".delta")]
    completed = events[-1]
    assert deltas and "".join(deltas) == completed["transcript"] == " ".join(WORDS[:6])
    assert completed["usage"]["type"] == "duration" and 2.0 < completed["usage"]["seconds"] < 3.0
    assert len({e["item_id"] for e in events}) == 1
    assert 0 <= events[0]["audio_start_ms"] <= 300


def test_manual_commit_with_g711(http):
    for audio_format, encode in (("audio/pcmu", audioop.lin2ulaw), ("audio/pcma", audioop.lin2alaw)):
        with http.websocket_connect(URL) as ws:
            checked(ws.receive_json())
            ws.send_json({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "format": {"type": audio_format}, "turn_detection": None}}}})
            checked(ws.receive_json())
            audio8k = (speech(1.0, after=0.2)[::2] * 32767).astype("<i2")
            send_audio(ws, encode(audio8k.tobytes(), 2), chunk_bytes=800)
            ws.send_json({"type": "input_audio_buffer.commit"})
            events = events_until(ws, "conversation.item.input_audio_transcription.completed")
            assert "input_audio_buffer.committed" in [e["type"] for e in events]
            assert "input_audio_buffer.speech_started" not in [e["type"] for e in events]
            assert events[-1]["transcript"] == " ".join(WORDS[:3]), audio_format


def test_bad_input_gets_error_events_and_the_session_goes_on(http):
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        bad = [
            ("not json", "invalid_json", None),
            (json.dumps([1, 2]), "invalid_value", None),
            (json.dumps({"type": "response.create", "event_id": "evt_1"}), "invalid_value", "type"),
            (json.dumps({"type": "input_audio_buffer.append", "audio": "%%%not base64"}), "invalid_value", "audio"),
            (json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"abc").decode()}), "invalid_value", "audio"),
            (json.dumps({"type": "input_audio_buffer.commit"}), "input_audio_buffer_commit_empty", None),
            (json.dumps({"type": "session.update", "session": {"type": "realtime"}}), "invalid_value", "session.type"),
            (json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": 16000}}}}}), "invalid_value", "session.audio.input.format.rate"),
            (json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "turn_detection": {"type": "semantic_vad"}}}}}), "invalid_value", None),
            (json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "transcription": {"model": "no-such-model"}}}}}), "model_not_found",
                "session.audio.input.transcription.model"),
            (json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "transcription": {"language": "klingon"}}}}}), "invalid_value",
                "session.audio.input.transcription.language"),
        ]
        for text, code, param in bad:
            ws.send_text(text)
            error = checked(ws.receive_json())
            assert error["type"] == "error" and error["error"]["code"] == code, (text, error)
            if param:
                assert error["error"]["param"] == param, (text, error)
        assert error["error"]["type"] == "invalid_request_error"
        ws.send_bytes(b"\x00\x01")
        assert checked(ws.receive_json())["type"] == "error"
        ws.send_json({"type": "input_audio_buffer.clear"})
        assert checked(ws.receive_json())["type"] == "input_audio_buffer.cleared"
        send_audio(ws, pcm24(speech(1.0)).tobytes(), chunk_bytes=4800)  # still transcribing, with the old model
        assert events_until(ws, "conversation.item.input_audio_transcription.completed")[-1]["transcript"]


def test_the_error_names_the_client_event_id(http):
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        ws.send_json({"type": "input_audio_buffer.commit", "event_id": "client-7"})
        assert checked(ws.receive_json())["error"]["event_id"] == "client-7"


def test_turn_detection_out_of_bounds_names_the_field_and_its_bound(http):
    """The realtime route's server_vad bounds (core.vad's): threshold 0 to 1, durations 0 to 10 s."""
    prefix = "session.audio.input.turn_detection."
    bad = [
        ({"threshold": 1.5}, "threshold", "Input should be less than or equal to 1"),
        ({"threshold": -0.5}, "threshold", "Input should be greater than or equal to 0"),
        ({"silence_duration_ms": 10_001}, "silence_duration_ms", "Input should be less than or equal to 10000"),
        ({"prefix_padding_ms": -1}, "prefix_padding_ms", "Input should be greater than or equal to 0"),
    ]
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        for fields, name, message in bad:
            ws.send_json({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "turn_detection": {"type": "server_vad", **fields}}}}})
            error = checked(ws.receive_json())["error"]
            assert (error["code"], error["param"]) == ("invalid_value", prefix + name)
            assert error["message"] == f"Invalid value for '{prefix + name}': {message}."
        ws.send_json({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "threshold": 1.0, "prefix_padding_ms": 10_000}}}}})
        detection = checked(ws.receive_json())["session"]["audio"]["input"]["turn_detection"]
        assert (detection["threshold"], detection["prefix_padding_ms"]) == (1.0, 10_000)


def test_another_intent_or_an_unknown_model_is_refused(http):
    with http.websocket_connect("/v1/realtime?intent=conversation") as ws:
        assert checked(ws.receive_json())["error"]["param"] == "intent"
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()
    with http.websocket_connect("/v1/realtime?intent=transcription&model=nope") as ws:
        assert checked(ws.receive_json())["error"]["code"] == "model_not_found"
    with http.websocket_connect("/v1/realtime?intent=transcription&model=talker") as ws:
        assert checked(ws.receive_json())["session"]["audio"]["input"]["transcription"]["model"] == "talker"


def test_api_keys_by_bearer_header_or_subprotocol(mounted):
    from starlette.testclient import WebSocketDenialResponse

    with TestClient(ApiKeyMiddleware(mounted, keys=["sk-live"])) as client:
        for headers, subprotocols in (({}, []), ({"Authorization": "Bearer wrong"}, []), ({}, ["realtime", "openai-insecure-api-key.wrong"])):
            with pytest.raises(WebSocketDenialResponse) as denied:
                with client.websocket_connect(URL, headers=headers, subprotocols=subprotocols):
                    pass
            assert denied.value.status_code == 401
            assert denied.value.json()["error"]["code"] == "invalid_api_key"
        with client.websocket_connect(URL, headers={"Authorization": "Bearer sk-live"}) as ws:
            assert checked(ws.receive_json())["type"] == "session.created"
        with client.websocket_connect(URL, subprotocols=["realtime", "openai-insecure-api-key.sk-live"]) as ws:
            assert ws.accepted_subprotocol == "realtime"  # never the key
            assert checked(ws.receive_json())["type"] == "session.created"


def test_g711_tables_match_the_reference_decoder():
    from core.g711 import A_LAW, MU_LAW

    codes = bytes(range(256))
    assert np.array_equal(MU_LAW, np.frombuffer(audioop.ulaw2lin(codes, 2), dtype="<i2"))
    assert np.array_equal(A_LAW, np.frombuffer(audioop.alaw2lin(codes, 2), dtype="<i2"))


def test_resampling_a_stream_in_pieces_equals_resampling_it_whole():
    from core.pcm_stream import PcmToModelRate

    samples = tone(1.0, 440, 24_000, amplitude=10_000).astype("<i2")
    whole = PcmToModelRate(24_000).convert(samples)
    pieces, converter = [], PcmToModelRate(24_000)
    for start in range(0, len(samples), 1234):
        pieces.append(converter.convert(samples[start : start + 1234]))
    chunked = np.concatenate(pieces)
    assert abs(len(whole) - 16_000) < 64 and abs(len(chunked) - len(whole)) < 64
    n = min(len(whole), len(chunked))
    assert np.abs(whole[:n] - chunked[:n]).max() < 1e-3


def test_include_logprobs_puts_tokens_on_deltas_and_the_completed_transcript(http):
    with http.websocket_connect(URL) as ws:
        assert checked(ws.receive_json())["session"]["include"] == []
        ws.send_json({"type": "session.update", "session": {
            "type": "transcription", "include": ["item.input_audio_transcription.logprobs"]}})
        assert checked(ws.receive_json())["session"]["include"] == ["item.input_audio_transcription.logprobs"]
        send_audio(ws, pcm24(speech(2.0)).tobytes(), chunk_bytes=4800)
        events = events_until(ws, "conversation.item.input_audio_transcription.completed")
    deltas = [e for e in events if e["type"].endswith(".delta")]
    completed = events[-1]
    assert deltas and all(e["logprobs"] for e in deltas)
    spelled = bytes(b for token in completed["logprobs"] for b in token["bytes"]).decode()
    assert spelled.strip() == completed["transcript"] == " ".join(WORDS[:6]) == "".join(e["delta"] for e in deltas)
    assert all(set(token) == {"token", "bytes", "logprob"} for token in completed["logprobs"])


def test_without_include_events_have_no_logprobs_and_an_unknown_include_is_an_error(http):
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        ws.send_json({"type": "session.update", "event_id": "u1", "session": {
            "type": "transcription", "include": ["item.input_audio_transcription.words"]}})
        error = checked(ws.receive_json())
        assert error["type"] == "error" and error["error"]["param"] == "session.include.0"
        assert error["error"]["event_id"] == "u1"
        send_audio(ws, pcm24(speech(2.0)).tobytes(), chunk_bytes=4800)
        events = events_until(ws, "conversation.item.input_audio_transcription.completed")
    assert not any("logprobs" in e for e in events)
    assert events[-1]["transcript"] == " ".join(WORDS[:6])


def test_deeply_nested_frames_get_an_error_event_and_the_session_lives_on(http):
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        for depth in (40, 100_000):
            ws.send_text('{"type": "session.update", "session": ' + "[" * depth + "]" * depth + "}")
            error = checked(ws.receive_json())["error"]
            assert error["code"] == "invalid_json" and "nested more than 32 levels" in error["message"]
            assert error["param"] == "session"  # the member the nesting is in
        ws.send_text("{" * 50_000)
        assert checked(ws.receive_json())["error"]["code"] == "invalid_json"
        send_audio(ws, pcm24(speech(1.0)).tobytes(), chunk_bytes=4800)
        assert events_until(ws, "conversation.item.input_audio_transcription.completed")[-1]["transcript"]


def test_error_events_repeat_only_a_short_part_of_what_the_client_sent(http):
    huge = "A" * 2_000_000
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        ws.send_json({"type": huge, "event_id": huge})
        error = checked(ws.receive_json())["error"]
        assert error["param"] == "type" and len(error["message"]) < 400
        assert error["event_id"] == "A" * 63 + "…"
        for event_id in ({"nested": "object"}, 7, ["x"]):
            ws.send_json({"type": "response.create", "event_id": event_id})
            assert checked(ws.receive_json())["error"]["event_id"] is None
        ws.send_json({"type": "session.update", "session": {"type": "transcription", "audio": {
            "input": {"transcription": {"model": huge}}}}})
        error = checked(ws.receive_json())["error"]
        assert error["code"] == "model_not_found" and len(error["message"]) <= 1000


def session_limit_refusal(ws) -> dict:
    """The error event a session over a bound gets, then the close (1013: try again later)."""
    error = checked(ws.receive_json())["error"]
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 1013
    return error


def test_sessions_over_the_servers_bound_get_an_error_event_and_a_1013_close(fake_models, v1_app, http):
    from server.collaborators import bind

    bind(v1_app, Collaborators(live=live_transcriber(fake_models, max_sessions=2)))
    with http.websocket_connect(URL) as first, http.websocket_connect(URL) as second:
        for ws in (first, second):
            assert checked(ws.receive_json())["type"] == "session.created"
        with http.websocket_connect(URL) as third:
            error = session_limit_refusal(third)
        assert (error["type"], error["code"]) == ("rate_limit_error", "session_limit_reached")
        assert "already serves 2 realtime sessions" in error["message"]
    with http.websocket_connect(URL) as again:  # the first two have closed
        assert checked(again.receive_json())["type"] == "session.created"


def test_sessions_over_one_keys_bound_are_refused_and_other_keys_are_not(fake_models, v1_app, mounted):
    from server.collaborators import bind

    bind(v1_app, Collaborators(live=live_transcriber(fake_models, max_sessions_per_client=1)))
    key = {"one": {"Authorization": "Bearer sk-one"}, "two": {"Authorization": "Bearer sk-two"}}
    with TestClient(ApiKeyMiddleware(mounted, keys=["sk-one", "sk-two"])) as client:
        with client.websocket_connect(URL, headers=key["one"]) as first:
            assert checked(first.receive_json())["type"] == "session.created"
            with client.websocket_connect(URL, subprotocols=["realtime", "openai-insecure-api-key.sk-one"]) as same:
                error = session_limit_refusal(same)
            assert error["code"] == "session_limit_reached" and "Your API key already has 1" in error["message"]
            with client.websocket_connect(URL, headers=key["two"]) as other:
                assert checked(other.receive_json())["type"] == "session.created"


def test_a_page_of_another_origin_is_refused_at_the_handshake_and_the_own_page_is_not(http):
    from starlette.testclient import WebSocketDenialResponse

    with pytest.raises(WebSocketDenialResponse) as denied:
        with http.websocket_connect(URL, headers={"Origin": "https://evil.example"}):
            pass
    assert denied.value.status_code == 403
    error = denied.value.json()["error"]
    assert error["code"] == "origin_not_allowed" and "'https://evil.example'" in error["message"]
    for origin in ("http://testserver", "http://localhost:5173"):  # the server's own page; a page on localhost
        with http.websocket_connect(URL, headers={"Origin": origin}) as ws:
            assert checked(ws.receive_json())["type"] == "session.created"


def test_the_operator_may_allow_other_origins(fake_models, v1_app, http):
    from server.collaborators import RealtimeSettings, bind

    bind(v1_app, Collaborators(
        live=live_transcriber(fake_models), realtime_settings=RealtimeSettings(allowed_origins=("https://app.example",))
    ))
    with http.websocket_connect(URL, headers={"Origin": "https://app.example"}) as ws:
        assert checked(ws.receive_json())["type"] == "session.created"


def test_an_append_longer_than_the_pace_allows_gets_an_error_and_the_session_goes_on(fake_models, v1_app, http):
    from server.collaborators import bind

    bind(v1_app, Collaborators(live=live_transcriber(fake_models, audio_burst_s=3.0)))
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        too_long = base64.b64encode(pcm24(silence(3.5)).tobytes()).decode()
        ws.send_json({"type": "input_audio_buffer.append", "audio": too_long, "event_id": "big"})
        error = checked(ws.receive_json())["error"]
        assert (error["code"], error["param"], error["event_id"]) == ("input_audio_append_too_large", "audio", "big")
        assert "at most 3 s of audio" in error["message"]
        send_audio(ws, pcm24(speech(1.0)).tobytes(), chunk_bytes=4800)
        assert events_until(ws, "conversation.item.input_audio_transcription.completed")[-1]["transcript"]


def session_log_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "stt.requests" and '"realtime_session"' in r.getMessage()]


def test_every_session_leaves_one_request_log_line_when_it_ends(fake_models, v1_app, http, caplog):
    from server.collaborators import bind

    bind(v1_app, Collaborators(live=live_transcriber(fake_models, max_sessions=1)))
    with caplog.at_level(logging.INFO, logger="stt.requests"):
        with http.websocket_connect(URL) as ws:
            checked(ws.receive_json())
            send_audio(ws, pcm24(speech(1.0)).tobytes(), chunk_bytes=4800)
            events_until(ws, "conversation.item.input_audio_transcription.completed")
            with http.websocket_connect(URL) as refused:
                session_limit_refusal(refused)
            ws.close()  # as a real client does: the session sees the disconnect (leaving the block cancels it)
            for _ in range(200):
                if len(session_log_lines(caplog)) == 2:
                    break
                time.sleep(0.01)
        with pytest.raises(Exception):
            with http.websocket_connect(URL, headers={"Origin": "https://evil.example"}):
                pass
    refused, served, other_page = session_log_lines(caplog)
    assert served["model"] == "talker" and served["outcome"] == "closed" and served["turns"] == 1
    assert abs(served["audio_s"] - 2.3) < 0.05 and served["session_s"] > 0
    assert (refused["outcome"], refused["error_code"], refused["turns"]) == ("refused", "session_limit_reached", 0)
    assert (other_page["outcome"], other_page["error_code"]) == ("refused", "origin_not_allowed")


def test_what_the_preparation_refuses_in_a_session_update_is_named_by_its_place_in_the_session(
    http, monkeypatch
):
    """The session's prompt goes through the one request preparation (which bounds prompts); what it refuses there
    is named where the session carries it. (The preparation's own bound is stood in for here.)"""
    import pipeline.live.transcriber as live_transcriber_module
    from core.errors import InvalidInputError

    prepare = live_transcriber_module.prepare

    def bounded(pool, model_id, default_model, options):
        if options.initial_prompt and len(options.initial_prompt.encode()) > 1000:
            raise InvalidInputError("'prompt' is longer than 1000 bytes.", input="prompt")
        return prepare(pool, model_id, default_model, options)

    monkeypatch.setattr(live_transcriber_module, "prepare", bounded)
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        ws.send_json({"type": "session.update", "event_id": "p1", "session": {"type": "transcription", "audio": {
            "input": {"transcription": {"prompt": "fox " * 1000}}}}})
        error = checked(ws.receive_json())["error"]
        assert (error["param"], error["event_id"]) == ("session.audio.input.transcription.prompt", "p1")
        ws.send_json({"type": "session.update", "session": {"type": "transcription", "audio": {
            "input": {"transcription": {"prompt": "foxes"}}}}})
        assert checked(ws.receive_json())["session"]["audio"]["input"]["transcription"]["prompt"] == "foxes"


def test_audio_faster_than_the_pace_gets_an_error_per_dropped_append_and_the_session_goes_on(fake_models, v1_app,
                                                                                              http):
    from server.collaborators import bind

    bind(v1_app, Collaborators(live=live_transcriber(fake_models, max_audio_speed=2.0, audio_burst_s=2.0)))
    second = base64.b64encode(pcm24(silence(1.0)).tobytes()).decode()
    with http.websocket_connect(URL) as ws:
        checked(ws.receive_json())
        for _ in range(3):
            ws.send_json({"type": "input_audio_buffer.append", "audio": second, "event_id": "fast"})
        error = checked(ws.receive_json())["error"]
        assert (error["type"], error["code"], error["param"]) == ("rate_limit_error", "input_audio_too_fast", "audio")
        assert error["event_id"] == "fast" and "faster than 2 times real time" in error["message"]
        send_audio(ws, pcm24(speech(1.0)).tobytes(), chunk_bytes=4800, pause_s=0.06)  # under twice real time
        assert events_until(ws, "conversation.item.input_audio_transcription.completed")[-1]["transcript"]
