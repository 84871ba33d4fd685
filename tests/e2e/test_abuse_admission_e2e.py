"""The admission cases of ``bench/abuse/admission.py``, small enough for CI, against a real server with keys, a tight
bound on the wait (so that a few long files are enough to pass it) and a low limit on chat audio parts: long files
beyond the bound get 429 with Retry-After, the short request behind them is served or refused with Retry-After,
too many chat audio parts get 400 naming ``messages``; and every 503 (a preloaded model that cannot load keeps
``/readyz`` at 503) carries Retry-After. Only statuses and headers are asserted; the bench measures times."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bench.abuse.admission import send_chat_with_audio_parts, send_long_files_and_a_short_request
from bench.abuse.case import Target
from bench.server import ROOT, RunningServer, running_server

KEY = "sk-admission"
MAX_PARTS = 4


@pytest.fixture(scope="module")
def admission_server(corpus_dir: Path, tmp_path_factory) -> Iterator[RunningServer]:
    """tiny-en serves; freds0 is preloaded too, and fails (its weights are not in the empty cache)."""
    registry = yaml.safe_load((ROOT / "models.yaml").read_text())
    for entry in registry["models"]:
        if entry["id"] == "freds0":
            entry["preload"] = True
    path = tmp_path_factory.mktemp("admission") / "models.yaml"
    path.write_text(yaml.safe_dump(registry))
    env = {
        "STT_REGISTRY_PATH": str(path),
        "STT_API_KEYS": KEY,
        "STT_MAX_QUEUE_WAIT_S": "0.5",
        "STT_CHAT_MAX_AUDIO_PARTS": str(MAX_PARTS),
        "STT_MODEL_LOAD_RETRY_S": "30",
    }
    with running_server(env, wait_for="/livez") as server:
        deadline = time.monotonic() + 120
        while "preloading freds0 failed" not in server.log():
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.5)
        yield server


@pytest.fixture(scope="module")
def target(admission_server: RunningServer, corpus_dir: Path, tmp_path_factory) -> Target:
    return Target(admission_server.url, KEY, corpus_dir, tmp_path_factory.mktemp("admission-inputs"))


def _retry_after(response_or_answer) -> int:
    headers = getattr(response_or_answer, "headers", None)
    value = headers.get("retry-after") if headers is not None else response_or_answer.retry_after
    assert value is not None and re.fullmatch(r"[1-9][0-9]*", value), value
    return int(value)


def test_long_files_over_the_bound_are_refused_with_retry_after_and_the_short_request_is_not_starved(target):
    run = send_long_files_and_a_short_request(target, files=4, file_s=100.0, short_after_s=1.0)
    statuses = sorted(answer.status for answer in run.long_answers)
    # Measured at tens of audio seconds a second, a 100 s file behind another waits far more than 0.5 s.
    assert 200 in statuses and 429 in statuses and set(statuses) <= {200, 429}, statuses
    for answer in run.long_answers:
        if answer.status == 429:
            _retry_after(answer)
    # The short request, behind what was admitted, is served, or refused at once with Retry-After.
    assert run.short_answer.status in (200, 429)
    if run.short_answer.status == 429:
        _retry_after(run.short_answer)


def test_too_many_chat_audio_parts_are_refused_naming_messages(target):
    refused = send_chat_with_audio_parts(target, MAX_PARTS + 1)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["param"] == "messages" and error["code"] == "too_many_audio_parts"
    assert send_chat_with_audio_parts(target, MAX_PARTS).status_code == 200


def test_every_503_says_when_to_retry(admission_server, jfk_path):
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=admission_server.url, timeout=120) as http:
        not_ready = http.get("/readyz")  # BentoML's own answer, through the error middleware
        assert not_ready.status_code == 503 and _retry_after(not_ready) >= 1
        unavailable = http.post("/v1/audio/transcriptions", files={"file": jfk_path.read_bytes()},
                                data={"model": "freds0"}, headers=headers)
        assert unavailable.status_code == 503 and _retry_after(unavailable) >= 1
        assert http.get("/docs").status_code == 200  # and the docs page opens without a key
