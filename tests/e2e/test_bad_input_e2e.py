"""Whatever a client sends, the server answers with a clear error (or a transcript) and keeps serving."""

from __future__ import annotations

import io
import wave
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench.audio_files import encode


@dataclass(frozen=True)
class Upload:
    name: str
    content: bytes
    content_type: str = "application/octet-stream"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not audio")
    return buffer.getvalue()


def _silent_wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(bytes(2 * int(16_000 * seconds)))
    return buffer.getvalue()


def _corrupt_middle(data: bytes) -> bytes:
    third = len(data) // 3
    return data[:third] + bytes(np.random.default_rng(1).integers(0, 256, third, dtype=np.uint8)) + data[2 * third :]


# name -> (upload builder, accepted statuses, expected text when 200 must be empty)
Builder = Callable[[dict[str, bytes], Path], Upload]
CASES: dict[str, tuple[Builder, set[int], bool]] = {
    "text file": (lambda a, t: Upload("notes.txt", b"meeting notes\n" * 200, "text/plain"), {415}, False),
    "png image": (lambda a, t: Upload("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(512), "image/png"), {415}, False),
    "random bytes": (lambda a, t: Upload("noise.wav", bytes(np.random.default_rng(0).integers(0, 256, 8000, dtype=np.uint8))), {415}, False),
    "zip archive": (lambda a, t: Upload("archive.zip", _zip(), "application/zip"), {415}, False),
    "empty file": (lambda a, t: Upload("empty.wav", b""), {400}, False),
    "truncated flac": (lambda a, t: Upload("cut.flac", a["flac"][: len(a["flac"]) * 2 // 5], "audio/flac"), {200, 415}, False),
    "truncated mp3": (lambda a, t: Upload("cut.mp3", a["mp3"][: len(a["mp3"]) // 2], "audio/mpeg"), {200, 415}, False),
    "truncated wav": (lambda a, t: Upload("cut.wav", a["wav"][: len(a["wav"]) // 3], "audio/wav"), {200, 415}, False),
    "corrupt mp3 middle": (lambda a, t: Upload("bad.mp3", _corrupt_middle(a["mp3"]), "audio/mpeg"), {200, 415}, False),
    "zero samples": (lambda a, t: Upload("zero.wav", _silent_wav(0), "audio/wav"), {200}, True),
    "pure silence": (lambda a, t: Upload("silence.wav", _silent_wav(5), "audio/wav"), {200}, True),
    "wrong extension": (lambda a, t: Upload("speech.mp3", a["flac"], "audio/mpeg"), {200}, False),
    "no extension": (lambda a, t: Upload("speech", a["flac"]), {200}, False),
    "misleading content type": (lambda a, t: Upload("speech.flac", a["flac"], "image/png"), {200}, False),
    "path traversal name": (lambda a, t: Upload("../../../../tmp/evil.flac", a["flac"], "audio/flac"), {200}, False),
    "very long name": (lambda a, t: Upload("a" * 400 + ".flac", a["flac"], "audio/flac"), {200}, False),
}


@pytest.fixture(scope="module")
def audio_bytes(jfk_path, jfk_audio, tmp_path_factory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("bad-input")
    return {
        "flac": jfk_path.read_bytes(),
        "mp3": encode(jfk_audio, 16_000, tmp / "jfk.mp3", "libmp3lame").read_bytes(),
        "wav": encode(jfk_audio, 16_000, tmp / "jfk.wav", "pcm_s16le").read_bytes(),
    }


ROUTES = {"/transcribe": {}, "/v1/audio/transcriptions": {"model": "whisper-1"}, "/v1/audio/diarizations": {}}


def _send(http: httpx.Client, route: str, upload: Upload, **fields: str) -> httpx.Response:
    files = {"file": (upload.name, upload.content, upload.content_type)}
    return http.post(route, files=files, data={**ROUTES[route], **fields})


def _assert_error_body(response: httpx.Response) -> None:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], response.text


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("case", list(CASES))
def test_bad_uploads(http, audio_bytes, tmp_path, route, case):
    build, statuses, must_be_empty = CASES[case]
    if route.startswith("/v1"):  # OpenAI answers audio it cannot read with 400 (the SDKs' BadRequestError)
        statuses = {400 if status == 415 else status for status in statuses}
    response = _send(http, route, build(audio_bytes, tmp_path))
    assert response.status_code in statuses, (case, response.status_code, response.text)
    if response.status_code == 200:
        if must_be_empty and route == "/v1/audio/diarizations":
            assert response.json()["segments"] == [], "no speaker may be found in silence"
        elif must_be_empty:
            assert response.json()["text"] == "", "no words may be hallucinated from silence"
    else:
        _assert_error_body(response)
        error = response.json()["error"]
        assert error["param"] == "file" and error["type"] == "invalid_request_error", response.text


def test_non_utf8_file_name(http, audio_bytes):
    boundary = "stt-boundary"
    for route, field_name in (("/transcribe", b""), ("/v1/audio/transcriptions", b"")):
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
            + b"\xff\xfe\x80\xc3(.flac"
            + b'"\r\nContent-Type: audio/flac\r\n\r\n'
            + audio_bytes["flac"]
            + f"\r\n--{boundary}--\r\n".encode()
        )
        response = http.post(route, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 200, (route, response.text)
        assert "country" in response.json()["text"].lower()


# /transcribe's fields through BentoML; /v1's parameter refusals are checked in process
# (tests/server/audio/test_bad_parameters.py).
PARAMETER_CASES = [
    ("/transcribe", {"model_id": "../../models.yaml"}, 404, "model_id"),
    ("/transcribe", {"model_id": "/etc/passwd"}, 404, "model_id"),
    ("/transcribe", {"model_id": "embedded-diarizer"}, 400, "model_id"),
    ("/transcribe", {"task": "summarize"}, 400, "task"),
    ("/transcribe", {"language": "klingon"}, 400, "language"),
    ("/transcribe", {"word_timestamps": "maybe"}, 400, "word_timestamps"),
]


@pytest.mark.parametrize(("route", "fields", "status", "param"), PARAMETER_CASES)
def test_bad_parameters(http, audio_bytes, route, fields, status, param):
    upload = Upload("jfk.flac", audio_bytes["flac"], "audio/flac")
    response = http.post(route, files={"file": (upload.name, upload.content, upload.content_type)}, data=fields)
    assert response.status_code == status, response.text
    _assert_error_body(response)
    assert response.json()["error"]["param"] == param


def test_missing_file(http):
    for route in ROUTES:
        response = http.post(route, data={"model": "whisper-1"})
        assert response.status_code == 400, response.text
        _assert_error_body(response)
        assert response.json()["error"]["param"] == "file"


def test_server_still_serves_and_left_no_temp_files(server, http, audio_bytes):
    response = _send(http, "/transcribe", Upload("ok.flac", audio_bytes["flac"], "audio/flac"))
    assert response.status_code == 200 and "country" in response.json()["text"].lower()
    assert server.process.poll() is None
    assert server.wait_for_leftovers([]) == []
    # Nothing was written where a hostile name pointed.
    assert not Path("/tmp/evil.flac").exists()


def _raw_upload(server, content: bytes, declared_length: int, model: str = "tiny-en") -> None:
    """Send a multipart upload over a raw socket and hang up without reading the answer."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(server.url)
    boundary = "hangup"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model_id"\r\n\r\n{model}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.flac"\r\n'
        "Content-Type: audio/flac\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    request_head = (
        f"POST /transcribe HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + declared_length + len(tail)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(request_head + head + content)
        if len(content) == declared_length:
            sock.sendall(tail)


def _model_in_use(http, model: str) -> int:
    return next(m for m in http.get("/v1/models").json()["data"] if m["id"] == model)["in_use"]


def test_client_hanging_up_mid_upload_or_mid_inference_leaks_nothing(server, http, long_concat, audio_bytes):
    import time

    flac = long_concat.path.read_bytes()
    _raw_upload(server, flac[: len(flac) // 2], declared_length=len(flac))  # hangs up mid-upload
    _raw_upload(server, flac, declared_length=len(flac))  # hangs up while its 100 s file is transcribed
    deadline = time.monotonic() + 120
    while _model_in_use(http, "tiny-en") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _model_in_use(http, "tiny-en") == 0, "no request slot may stay taken"
    assert server.wait_for_leftovers([], timeout_s=10) == []
    response = _send(http, "/transcribe", Upload("ok.flac", audio_bytes["flac"], "audio/flac"))
    assert response.status_code == 200
