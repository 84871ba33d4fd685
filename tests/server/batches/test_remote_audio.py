"""A batch line's ``url`` fetched from a server on 127.0.0.1: the body in a temporary file, the upload bound
before and while it arrives, no redirect followed, errors naming ``url``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import InvalidInputError, TooLargeError
from server.batches.remote_audio import fetched

BODY = b"RIFF" + b"\0" * 2000


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/audio.wav")
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        if self.path != "/chunked":
            self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_body_is_fetched_into_a_temporary_file_removed_afterwards(origin):
    with fetched(f"{origin}/audio.wav", 10_000, 5.0) as path:
        assert path.read_bytes() == BODY
    assert not path.exists()


@pytest.mark.parametrize("route", ["/audio.wav", "/chunked"])
def test_a_body_over_the_bound_is_413_whether_declared_or_not(origin, route):
    with pytest.raises(TooLargeError) as refused:
        with fetched(f"{origin}{route}", 1000, 5.0):
            pass
    assert refused.value.input == "url"


@pytest.mark.parametrize("route", ["/redirect", "/missing"])
def test_redirects_and_errors_are_refused_naming_the_url(origin, route):
    with pytest.raises(InvalidInputError) as refused:
        with fetched(f"{origin}{route}", 10_000, 5.0):
            pass
    assert refused.value.input == "url" and refused.value.code == "audio_url_unreachable"
