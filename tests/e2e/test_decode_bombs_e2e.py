"""Decode bombs against a real server: a few kilobytes describing hours of audio, or a rate that resampling
multiplies, are refused within a second or two, and the server's memory barely moves."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from bench.audio_files import encode_silence
from core.audio import MAX_EXPANSION

MB = 2**20
REFUSED_BEFORE_DECODING_MB = 32  # a refusal before the first frame decodes: nothing but the request itself


def _flac(tmp: Path, name: str, sample_rate: int, seconds: float, block_size: int | None = None,
          declare_duration: bool = True) -> bytes:
    path = encode_silence(tmp / name, sample_rate, int(sample_rate * seconds), "flac", block_size, declare_duration)
    return path.read_bytes()


# name -> (upload builder, status, code, most the server's RSS may grow by, in MB, given the upload's size)
BOMBS: dict[str, tuple[Callable[[Path], bytes], int, str, Callable[[int], float]]] = {
    "1 Hz flac, 2.5 hours in 9 KB": (
        lambda t: _flac(t, "a.flac", 1, 9000), 415, "unsupported_sample_rate", lambda size: REFUSED_BEFORE_DECODING_MB
    ),
    "1 Hz flac, one 32768-sample frame": (
        lambda t: _flac(t, "b.flac", 1, 32768, 32768), 415, "unsupported_sample_rate",
        lambda size: REFUSED_BEFORE_DECODING_MB,
    ),
    "8 kHz flac declaring 5 hours": (
        lambda t: _flac(t, "c.flac", 8000, 5 * 3600, 65535), 413, "audio_too_long",
        lambda size: REFUSED_BEFORE_DECODING_MB,
    ),
    # No duration in the header: decoded until it passes the expansion bound, then freed.
    "8 kHz flac, an hour undeclared": (
        lambda t: _flac(t, "d.flac", 8000, 3600, 65535, declare_duration=False), 400, "audio_expansion_too_large",
        lambda size: MAX_EXPANSION * size / MB + REFUSED_BEFORE_DECODING_MB,
    ),
}
ROUTES = {"/transcribe": {}, "/v1/audio/transcriptions": {"model": "whisper-1"}}


class PeakRss:
    """The most the server's processes (the root and its children) held above their RSS at the start."""

    def __init__(self, pid: int) -> None:
        root = psutil.Process(pid)
        self.processes = [root, *root.children(recursive=True)]
        self.start = {p.pid: p.memory_info().rss for p in self.processes}
        self._peak = dict(self.start)
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        try:  # restart each process's peak RSS (VmHWM) from now: exact, however short the peak
            for p in self.processes:
                Path(f"/proc/{p.pid}/clear_refs").write_text("5")
            self.exact = True
        except OSError:  # not allowed here: sample instead
            self.exact = False
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            for p in self.processes:
                try:
                    self._peak[p.pid] = max(self._peak[p.pid], p.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass

    def growth_mb(self) -> float:
        if self.exact:
            for p in self.processes:
                status = Path(f"/proc/{p.pid}/status").read_text()
                hwm_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
                self._peak[p.pid] = hwm_kib * 1024
        else:
            self._stop.set()
            assert self._sampler is not None
            self._sampler.join()
        return sum(max(0, self._peak[pid] - self.start[pid]) for pid in self.start) / MB


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("bombs")
    return {name: build(tmp) for name, (build, *_) in BOMBS.items()}


@pytest.fixture(scope="module")
def warm(http, jfk_path):
    """One ordinary request on each route first: what a server allocates once is not a bomb's doing."""
    for route, fields in ROUTES.items():
        with jfk_path.open("rb") as f:
            assert http.post(route, files={"file": ("jfk.flac", f)}, data=fields).status_code == 200


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("name", list(BOMBS))
def test_a_decode_bomb_is_refused_quickly_and_the_server_memory_barely_moves(
    http: httpx.Client, server, warm, bombs, route: str, name: str
):
    _, status, code, most_mb = BOMBS[name]
    upload = bombs[name]
    assert len(upload) < 50_000
    rss = PeakRss(server.process.pid)
    started = time.perf_counter()
    response = http.post(route, files={"file": ("upload.flac", io.BytesIO(upload), "audio/flac")}, data=ROUTES[route])
    elapsed = time.perf_counter() - started
    growth = rss.growth_mb()
    # Undecodable audio is 415 on /transcribe and 400 on OpenAI's routes, as OpenAI answers.
    expected = 400 if status == 415 and route.startswith("/v1/") else status
    assert response.status_code == expected, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], response.text
    assert error["code"] == code and error["param"] == "file" and error["type"] == "invalid_request_error"
    assert elapsed < 2, f"answered in {elapsed:.2f} s"
    assert growth < most_mb(len(upload)), f"the server grew by {growth:.0f} MB for a {len(upload)}-byte upload"
    assert http.get("/readyz").status_code == 200


def test_an_hour_of_silence_from_a_standard_encoder_is_no_bomb(http: httpx.Client, warm, tmp_path: Path):
    # 185 KB that decode to 230 MB (1,220 times): within the bound, so it decodes, and Whisper hears nothing.
    upload = _flac(tmp_path, "quiet.flac", 16_000, 3600, 4096)
    for route, fields in ROUTES.items():
        response = http.post(route, files={"file": ("quiet.flac", upload, "audio/flac")}, data=fields)
        assert response.status_code == 200, response.text
        assert response.json()["text"] == ""
