"""A web server on 127.0.0.1 that serves audio for the server's remote fetches (``edge.remote_fetch``), and records
every request it gets: ``/redirect`` answers 302, ``/missing`` 404, ``/chunked`` has no Content-Length, ``/slow``
drips its body; any other path gets ``body`` with its length."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class AudioOrigin:
    url: str
    """``http://127.0.0.1:PORT``."""
    body: bytes
    paths: list[str] = field(default_factory=list)
    """The path of every request, in order."""
    hosts: list[str] = field(default_factory=list)
    """The Host header of every request."""

    @property
    def port(self) -> str:
        return self.url.rsplit(":", 1)[1]


@contextmanager
def audio_origin(body: bytes) -> Iterator[AudioOrigin]:
    origin = AudioOrigin("", body)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            origin.paths.append(self.path)
            origin.hosts.append(self.headers["Host"])
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
            if self.path not in ("/chunked", "/slow"):
                self.send_header("Content-Length", str(len(origin.body)))
            self.end_headers()
            if self.path == "/slow":
                for start in range(0, len(origin.body), 100):
                    self.wfile.write(origin.body[start : start + 100])
                    self.wfile.flush()
                    time.sleep(0.2)
                return
            self.wfile.write(origin.body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield origin
    finally:
        server.shutdown()
        server.server_close()
