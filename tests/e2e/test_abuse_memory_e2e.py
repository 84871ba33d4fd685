"""Small files that decode to gigabytes, against a real server: three 3 h 50 min FLACs of a constant -40 dBFS at
once (each decodes to 883 MB; before the audio memory budget one took the worker from 0.4 to 3.3 GB, three to
9.1 GB) are each answered, with empty text or a refusal that says when to come back, and the server's memory stays
far under those figures."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bench.abuse.memory import constant_flac
from bench.abuse.probe import MemoryProbe

AT_ONCE = 3
MOST_GROWTH_MB = 1536  # the target for eight at once; one of them alone used to take 2,900 MB


@pytest.fixture(scope="module")
def long_constant_flac(tmp_path_factory) -> bytes:
    return constant_flac(tmp_path_factory.mktemp("constant")).read_bytes()


def test_long_constant_files_at_once_are_answered_and_memory_stays_bounded(
    http: httpx.Client, server, jfk_path: Path, long_constant_flac: bytes
):
    assert len(long_constant_flac) < 3 * 2**20
    with jfk_path.open("rb") as f:  # what a server allocates once (the model, the VAD) is not these files' doing
        assert http.post("/v1/audio/transcriptions", files={"file": f}, data={"model": "whisper-1"}).status_code == 200

    def send(_: int) -> httpx.Response:
        files = {"file": ("constant.flac", long_constant_flac, "audio/flac")}
        return http.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})

    with MemoryProbe(server.process.pid) as probe, ThreadPoolExecutor(AT_ONCE) as pool:
        responses = list(pool.map(send, range(AT_ONCE)))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429, 503}, [r.text for r in responses]
    assert 200 in statuses, [r.text for r in responses]
    for response in responses:
        if response.status_code == 200:
            assert response.json()["text"] == ""
        else:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"]["code"] in {"audio_memory_full", "rate_limit_exceeded", "model_unavailable"}
    assert probe.peak_above_start_mb < MOST_GROWTH_MB, f"the server grew by {probe.peak_above_start_mb:.0f} MB"
    assert http.get("/readyz").status_code == 200
