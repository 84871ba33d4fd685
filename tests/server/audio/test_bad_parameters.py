"""``/v1/audio/*`` parameters the routes refuse, in process: each answer's status, the parameter it names and the
error body's four fields (``tests/e2e/test_bad_input_e2e.py`` keeps what only a real server shows)."""

from __future__ import annotations

import pytest

# The in-process registry's diarization model is "speakers" (the shipped one's is "embedded-diarizer").
PARAMETER_CASES = [
    ("/v1/audio/transcriptions", {"response_format": "xml"}, 400, "response_format"),
    ("/v1/audio/transcriptions", {"language": "xx"}, 400, "language"),
    ("/v1/audio/transcriptions", {"language": "english please"}, 400, "language"),
    ("/v1/audio/transcriptions", {"temperature": "1.5"}, 400, "temperature"),
    ("/v1/audio/transcriptions", {"temperature": "-0.1"}, 400, "temperature"),
    ("/v1/audio/transcriptions", {"temperature": "warm"}, 400, "temperature"),
    ("/v1/audio/transcriptions", {"timestamp_granularities[]": "word"}, 400, "timestamp_granularities"),
    ("/v1/audio/transcriptions", {"timestamp_granularities[]": "sentence", "response_format": "verbose_json"}, 400,
     "timestamp_granularities"),
    ("/v1/audio/transcriptions", {"model": "../models"}, 404, "model"),
    ("/v1/audio/transcriptions", {"model": "freds0/../../etc/passwd"}, 404, "model"),
    ("/v1/audio/translations", {"response_format": "docx"}, 400, "response_format"),
    ("/v1/audio/transcriptions", {"model": "speakers"}, 400, "model"),
    ("/v1/audio/transcriptions", {"chunking_strategy": "{not json"}, 400, "chunking_strategy"),
    ("/v1/audio/transcriptions", {"chunking_strategy": '{"type": "client_vad"}'}, 400, "chunking_strategy"),
    ("/v1/audio/transcriptions", {"chunking_strategy": '{"type": "server_vad", "threshold": 1.5}'}, 400,
     "chunking_strategy"),
    ("/v1/audio/transcriptions",
     {"chunking_strategy[type]": "server_vad", "chunking_strategy[prefix_padding_ms]": "-5"}, 400, "chunking_strategy"),
    ("/v1/audio/transcriptions", {"response_format": "jsonl", "stream": "true"}, 400, "stream"),
    ("/v1/audio/transcriptions", {"prompt": "A" * (16 * 2**10 + 1)}, 400, "prompt"),
    ("/v1/audio/translations", {"prompt": "A" * (16 * 2**10 + 1)}, 400, "prompt"),
    ("/v1/audio/transcriptions", {"prompt": "a \x00 in a prompt"}, 400, "prompt"),
    ("/v1/audio/translations", {"prompt": "right-to-left \u202e override"}, 400, "prompt"),
    ("/v1/audio/transcriptions", {"chunking_strategy": "[" * 100_000 + "]" * 100_000}, 400, "chunking_strategy"),
    ("/v1/audio/transcriptions", {"chunking_strategy": '{"type": "server_vad", "prefix_padding_ms": 1000000000}'},
     400, "chunking_strategy"),
    ("/v1/audio/transcriptions",
     {"chunking_strategy[type]": "server_vad", "chunking_strategy[silence_duration_ms]": "10001"}, 400,
     "chunking_strategy"),
]


@pytest.mark.parametrize(("route", "fields", "status", "param"), PARAMETER_CASES)
def test_bad_parameters(http, wav_bytes, route, fields, status, param):
    response = http.post(route, files={"file": ("tone.wav", wav_bytes(), "audio/wav")},
                         data={"model": "whisper-1", **fields})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], response.text
    assert error["param"] == param


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/v1/audio/translations"])
def test_two_file_parts_are_refused_naming_file(http, wav_bytes, route):
    """A second ``file`` part was ignored without a word."""
    files = [("file", ("one.wav", wav_bytes(), "audio/wav")), ("file", ("two.wav", wav_bytes(1.0), "audio/wav"))]
    response = http.post(route, files=files, data={"model": "whisper-1"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["type"]) == ("file", "invalid_request_error")
    assert error["message"] == "Send one file per request, not 2."
    one = http.post(route, files=files[:1], data={"model": "whisper-1"})
    assert one.status_code == 200, one.text
