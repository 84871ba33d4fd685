"""A request refused because its model is busy says when to try again, whichever way it came: a file, a streamed
file (the refusal comes with the first item, before the stream starts), a chat completion, streamed or not."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from core.model_files import HubAccess
from pipeline.chat import Chat
from pipeline.pool import ModelPool, PoolLimits
from pipeline.transcriber import Transcriber
from server.collaborators import Collaborators
from strategies.base import RuntimeContext
from tests.fakes import FakeModels
from tests.support.transcribers import chat_registry

SPEED = 1.0
"""Audio seconds a second the model is measured to decode."""
AHEAD_S = 10.0
BOUND_S = 1.0


@pytest.fixture
def pool(fake_models: FakeModels) -> Iterator[ModelPool]:
    limits = PoolLimits(max_estimated_wait_s=BOUND_S)
    pool = ModelPool(chat_registry(), RuntimeContext("cpu", HubAccess()), factory=fake_models.engine, limits=limits)
    yield pool
    pool.close()


@pytest.fixture
def collaborators(pool: ModelPool) -> Collaborators:
    transcriber = Transcriber(pool, default_model="asr")
    return Collaborators(transcriber=transcriber, chat=Chat(transcriber))


@pytest.fixture
def busy(pool: ModelPool) -> Iterator[None]:
    """The model measured at 1 audio second a second, with a request of 10 s admitted: a 2 s request would wait 2 s
    (over the 1 s bound) until the first has 1 s left, 9 s from now."""
    spec = pool.registry.get("asr")
    with pool.use(spec):  # the model is loaded, and its admission built
        pass
    admission = pool.admission("asr")
    for _ in range(200):
        admission.throughput.record(audio_s=SPEED, elapsed_s=1.0)
    with pool.use(spec, audio_s=AHEAD_S):
        yield


def _refused(response) -> str:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["param"] == "model", error
    assert "over the limit of 1 s" in error["message"]
    return response.headers["retry-after"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_file_refused_for_its_wait_says_when_to_try_again(http, busy, wav_bytes, stream):
    files = {"file": ("a.wav", wav_bytes(2.0))}
    data = {"model": "whisper-1", **({"stream": "true"} if stream else {})}
    assert _refused(http.post("/v1/audio/transcriptions", files=files, data=data)) == "9"


@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_refused_for_its_wait_says_when_to_try_again(http, busy, wav_bytes, stream):
    audio = {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav_bytes(2.0)).decode(), "format": "wav"}}
    body = {"model": "whisper-1", "messages": [{"role": "user", "content": [audio]}], "stream": stream}
    assert _refused(http.post("/v1/chat/completions", json=body)) == "9"


def test_a_short_request_is_served_meanwhile(http, busy, wav_bytes):
    response = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes(0.5))}, data={"model": "x"})
    assert response.status_code == 404  # an unknown model is still a 404, not a 429
    served = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes(0.5))},
                       data={"model": "whisper-1"})
    assert served.status_code == 200 and served.json()["text"] == "asr heard 0.5s"  # 0.5 s ahead of it: within
