"""End-to-end: a real ``bentoml serve`` process on the embedded default model."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bench.corpus import normalize, word_error_rate
from core.audio import decode_audio
from bench.audio_files import encode
from tests.support.audio import JFK_PHRASE

MAX_WER_GAP = 0.02


def _transcribe(http: httpx.Client, path: Path, **fields) -> httpx.Response:
    with path.open("rb") as f:
        return http.post("/transcribe", files={"file": (path.name, f)}, data={k: str(v) for k, v in fields.items()})


def _assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


def test_health_routes(http):
    assert http.get("/livez").status_code == 200
    assert http.get("/readyz").status_code == 200


@pytest.fixture(scope="module")
def upload_files(corpus_dir, tmp_path_factory, jfk_audio) -> dict[str, Path]:
    made = tmp_path_factory.mktemp("formats")
    return {
        "flac": corpus_dir / "en/jfk_inaugural_1961_excerpt.flac",
        "wav": _write_wav(made, jfk_audio),
        "mp3": encode(jfk_audio, 16_000, made / "jfk.mp3", "libmp3lame"),
        "ogg": encode(jfk_audio, 16_000, made / "jfk.ogg", "libopus"),
        "webm": encode(jfk_audio, 16_000, made / "jfk.webm", "libopus"),
        "m4a": encode(jfk_audio, 16_000, made / "jfk.m4a", "aac"),
    }


def _write_wav(directory: Path, audio) -> Path:
    return encode(audio, 16_000, directory / "jfk.wav", "pcm_s16le")


@pytest.mark.parametrize("fmt", ["flac", "wav", "mp3", "ogg", "webm", "m4a"])
def test_transcribes_each_format(http, upload_files, fmt):
    response = _transcribe(http, upload_files[fmt])
    assert response.status_code == 200, response.text
    body = response.json()
    assert JFK_PHRASE in normalize(body["text"])
    assert body["model_id"] == "tiny-en" and body["language"] == "en"
    assert body["duration"] == pytest.approx(11.0, abs=0.2) and body["processing_time_s"] > 0
    assert all({"start", "end", "text"} <= set(s) for s in body["segments"])


def test_word_timestamps(http, upload_files):
    body = _transcribe(http, upload_files["flac"], word_timestamps="true").json()
    words = [w for s in body["segments"] for w in s["words"]]
    assert len(words) >= 20 and all(w["start"] <= w["end"] for w in words)


def test_word_error_rate_matches_faster_whisper_called_directly(http, english_short, tiny_en_dir):
    from faster_whisper import WhisperModel

    references = [u.text for u in english_short]
    served = []
    for utterance in english_short:
        response = _transcribe(http, utterance.path)
        assert response.status_code == 200, (utterance.path, response.text)
        served.append(response.json()["text"])
    direct_model = WhisperModel(str(tiny_en_dir), device="cpu", compute_type="int8")
    direct = []
    for utterance in english_short:
        segments, _ = direct_model.transcribe(decode_audio(utterance.path))
        direct.append("".join(s.text for s in segments))
    served_wer, direct_wer = word_error_rate(references, served), word_error_rate(references, direct)
    print(f"WER over {len(english_short)} utterances: service {served_wer:.4f}, faster-whisper direct {direct_wer:.4f}")
    assert abs(served_wer - direct_wer) <= MAX_WER_GAP
    assert served_wer < 0.2, "tiny.en on clean read English stays well under 20% WER"


def test_unknown_model_is_404_with_valid_ids(http, upload_files):
    error = _assert_openai_error(_transcribe(http, upload_files["flac"], model_id="no-such-model"), 404, "model_id")
    assert "tiny-en" in error["message"] and "freds0" in error["message"]


def test_registered_model_missing_offline_is_503_and_others_still_serve(http, upload_files):
    error = _assert_openai_error(_transcribe(http, upload_files["flac"], model_id="freds0"), 503, "model_id")
    assert "freds0" in error["message"] and "Hugging Face cache" in error["message"]
    assert _transcribe(http, upload_files["flac"]).status_code == 200


def test_bad_parameters_get_openai_error_bodies(http, upload_files):
    _assert_openai_error(_transcribe(http, upload_files["flac"], task="summarize"), 400, "task")
    _assert_openai_error(_transcribe(http, upload_files["flac"], language="xx"), 400, "language")
    _assert_openai_error(_transcribe(http, upload_files["flac"], language="de"), 400, "language")
    _assert_openai_error(http.post("/transcribe", data={"model_id": "tiny-en"}), 400)


def test_undecodable_and_empty_uploads(http, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("definitely not audio\n" * 100)
    _assert_openai_error(_transcribe(http, text), 415, "file")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    _assert_openai_error(_transcribe(http, empty), 400, "file")


def test_no_temp_file_survives_a_request(server, http, upload_files, tmp_path):
    assert server.wait_for_leftovers([]) == []
    assert _transcribe(http, upload_files["mp3"]).status_code == 200
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"\x00" * 4096)
    assert _transcribe(http, bad).status_code == 415
    assert _transcribe(http, upload_files["flac"], model_id="missing").status_code == 404
    # A large upload is spooled to disk by the multipart parser: it must go too.
    big = tmp_path / "big.wav"
    big.write_bytes(upload_files["wav"].read_bytes() * 6)
    assert _transcribe(http, big).status_code == 200
    assert server.wait_for_leftovers([]) == []


def test_bentoml_sync_client_with_a_path(server, upload_files):
    import bentoml

    with bentoml.SyncHTTPClient(server.url, timeout=300) as http:
        result = http.transcribe(file=upload_files["flac"], model_id="tiny-en", word_timestamps=False)
    assert JFK_PHRASE in normalize(result["text"])


@pytest.mark.parametrize("model_id", ["tiny-en-hf", "lite-tiny"])
def test_other_engines_serve_through_the_same_endpoint(http, upload_files, model_id):
    response = _transcribe(http, upload_files["ogg"], model_id=model_id, language="en")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_id"] == model_id and JFK_PHRASE in normalize(body["text"])
    assert body["segments"] and body["segments"][-1]["end"] <= body["duration"] + 0.05


def test_oversized_upload_is_refused_from_its_declared_length(server):
    import socket
    from urllib.parse import urlparse

    url = urlparse(server.url)
    request = (
        "POST /transcribe HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 2000000000\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(request + b"--x\r\n")  # a few bytes of a 2 GB body that never comes
        reply = b""
        while chunk := sock.recv(65536):  # the server answers and closes without waiting for the body
            reply += chunk
    head, _, body = reply.decode(errors="replace").partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "payload_too_large"
