from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.server import free_port
from bulk.audio_sources import AudioSourceError, duration_s, load_audio


@pytest.fixture
def audio_server(wav_bytes: Callable[..., bytes]) -> Iterator[str]:
    """A file server on 127.0.0.1: /ok.wav (a 2 s tone), /missing (404), /busy (503)."""
    body = wav_bytes(seconds=2.0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/ok.wav":
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(404 if self.path == "/missing" else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_local_path_and_a_file_url_are_read(tmp_path: Path, wav_bytes: Callable[..., bytes]):
    path = tmp_path / "a tone.wav"
    path.write_bytes(wav_bytes(seconds=1.5))
    assert load_audio(str(path)).data == path.read_bytes()
    audio = load_audio(path.as_uri())
    assert audio.name == "a tone.wav" and audio.data == path.read_bytes()
    assert duration_s(audio) == pytest.approx(1.5, abs=0.01)


@pytest.mark.parametrize("reference", ["/no/such/file.wav", "file:///no/such.wav", "ftp://x/y", "s3://bucket-only"])
def test_what_can_never_be_read_is_a_permanent_failure(reference: str):
    with pytest.raises(AudioSourceError) as raised:
        load_audio(reference)
    assert raised.value.permanent
    assert raised.value.body()["error"]["param"] == "audio"


def test_a_file_over_the_bound_is_refused_before_it_is_read(tmp_path: Path):
    path = tmp_path / "big.wav"
    path.write_bytes(b"0" * 1000)
    with pytest.raises(AudioSourceError) as raised:
        load_audio(str(path), max_bytes=999)
    assert raised.value.permanent and raised.value.code == "file_too_large"


def test_a_folder_is_not_audio(tmp_path: Path):
    with pytest.raises(AudioSourceError) as raised:
        load_audio(str(tmp_path))
    assert raised.value.permanent


def test_an_http_url_is_fetched_within_the_bound(audio_server: str):
    audio = load_audio(f"{audio_server}/ok.wav")
    assert audio.name == "ok.wav" and duration_s(audio) == pytest.approx(2.0, abs=0.01)
    with pytest.raises(AudioSourceError) as raised:
        load_audio(f"{audio_server}/ok.wav", max_bytes=100)
    assert raised.value.permanent and raised.value.code == "file_too_large"


def test_a_404_is_permanent_and_a_503_or_a_refused_connection_transient(audio_server: str):
    with pytest.raises(AudioSourceError) as missing:
        load_audio(f"{audio_server}/missing")
    with pytest.raises(AudioSourceError) as busy:
        load_audio(f"{audio_server}/busy")
    with pytest.raises(AudioSourceError) as refused:
        load_audio("http://127.0.0.1:9/x.wav", timeout_s=2)
    assert missing.value.permanent and not busy.value.permanent and not refused.value.permanent


def test_undeclared_duration_is_zero():
    from bulk.audio_sources import Audio

    assert duration_s(Audio("x", b"not audio at all")) == 0.0


@pytest.fixture(scope="module")
def s3_store() -> Iterator[Any]:
    """moto's S3 server on 127.0.0.1 with a bucket ``audio``; boto3 pointed at it by ``AWS_ENDPOINT_URL``."""
    boto3 = pytest.importorskip("boto3", reason="the optional S3 extra (requirements-s3.txt) is not installed")
    server_module = pytest.importorskip("moto.server", reason="moto[server] (requirements-dev.txt) is not installed")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    variables = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
                 "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        client = boto3.session.Session().client("s3")
        client.create_bucket(Bucket="audio")
        yield client
    server.stop()


def test_an_s3_object_is_fetched(s3_store: Any, wav_bytes: Callable[..., bytes]):
    body = wav_bytes(seconds=1.0)
    s3_store.put_object(Bucket="audio", Key="calls/2026/a call.wav", Body=body)
    audio = load_audio("s3://audio/calls/2026/a%20call.wav")
    assert audio.name == "a call.wav" and audio.data == body


@pytest.mark.parametrize("reference", ["s3://audio/no-such-key.wav", "s3://no-such-bucket/key.wav"])
def test_a_missing_s3_object_is_a_permanent_failure(s3_store: Any, reference: str):
    with pytest.raises(AudioSourceError) as raised:
        load_audio(reference)
    assert raised.value.permanent and raised.value.code == "audio_fetch_failed"


def test_an_s3_object_over_the_bound_is_refused_before_its_body_is_read(s3_store: Any):
    s3_store.put_object(Bucket="audio", Key="big.wav", Body=b"0" * 1000)
    with pytest.raises(AudioSourceError) as raised:
        load_audio("s3://audio/big.wav", max_bytes=999)
    assert raised.value.permanent and raised.value.code == "file_too_large"


def test_an_unreachable_s3_store_is_tried_again_later(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("boto3", reason="the optional S3 extra (requirements-s3.txt) is not installed")
    for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)  # a port nothing listens on
    with pytest.raises(AudioSourceError) as raised:
        load_audio("s3://audio/a.wav", timeout_s=2.0)
    assert not raised.value.permanent


def test_s3_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 raises ImportError
    with pytest.raises(AudioSourceError) as raised:
        load_audio("s3://audio/a.wav")
    assert raised.value.permanent and "requirements-s3.txt" in str(raised.value)
