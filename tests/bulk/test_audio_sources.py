from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("reference", ["/no/such/file.wav", "file:///no/such.wav", "s3://bucket/key.wav", "ftp://x/y"])
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
