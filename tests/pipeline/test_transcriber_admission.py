"""Admission on the transcriber's path: a request its model would refuse for its wait is refused before its audio
is decoded, from the duration its file declares; a short one is served meanwhile."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from core.errors import OverloadedError
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from core.types import TranscribeOptions
from pipeline.pool import ModelPool, PoolLimits
from pipeline.transcriber import Transcriber
from strategies.base import RuntimeContext
from tests.fakes import FakeModels


@pytest.fixture
def transcriber(fake_models: FakeModels) -> Iterator[Transcriber]:
    registry = ModelRegistry([ModelSpec(id="asr", engine="ctranslate2", model="x", language="en")])
    limits = PoolLimits(max_estimated_wait_s=1.0)
    pool = ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=fake_models.engine, limits=limits)
    transcriber = Transcriber(pool, default_model="asr")
    with pool.use(registry.get("asr")):  # loaded, and its admission built
        pass
    for _ in range(200):
        pool.admission("asr").throughput.record(audio_s=1.0, elapsed_s=1.0)  # measured at 1 audio s a second
    yield transcriber
    pool.close()


def test_a_request_over_the_wait_bound_is_refused_before_its_audio_is_decoded(transcriber, wav_bytes, monkeypatch):
    decoded: list[object] = []
    decode = transcriber._decode  # every request's audio is decoded here, once its header is read
    monkeypatch.setattr(
        transcriber, "_decode", lambda upload, cancelled: decoded.append(upload) or decode(upload, cancelled)
    )
    with transcriber.pool.use(transcriber.registry.get("asr"), audio_s=10.0):  # 10 s ahead
        with pytest.raises(OverloadedError) as refused:
            transcriber.transcribe(io.BytesIO(wav_bytes(3.0)), None, TranscribeOptions())  # would wait 3 s
        assert decoded == [] and refused.value.retry_after_s == pytest.approx(9.0)  # when the first has 1 s left
        with pytest.raises(OverloadedError):
            transcriber.open_stream(io.BytesIO(wav_bytes(3.0)), None, TranscribeOptions())
        assert decoded == []
        served = transcriber.transcribe(io.BytesIO(wav_bytes(0.5)), None, TranscribeOptions())  # waits 0.5 s
        assert served.transcription.text == "asr heard 0.5s" and len(decoded) == 1


def test_a_file_that_declares_no_duration_is_checked_once_decoded(transcriber, tmp_path):
    from bench.audio_files import encode
    from core.audio import SAMPLE_RATE
    from tests.support.audio import tone

    mp3 = encode(tone(3.0, 220.0, SAMPLE_RATE), SAMPLE_RATE, tmp_path / "a.mp3", "libmp3lame")  # no duration header
    with transcriber.pool.use(transcriber.registry.get("asr"), audio_s=10.0):
        with pytest.raises(OverloadedError):
            transcriber.transcribe(mp3, None, TranscribeOptions())


def test_requests_that_arrive_together_are_not_all_admitted_to_the_decoder(transcriber, wav_bytes, monkeypatch):
    import threading

    decoding, go_on = threading.Event(), threading.Event()
    decode = transcriber._decode

    def slow_decode(upload, cancelled):
        decoding.set()
        assert go_on.wait(10)
        return decode(upload, cancelled)

    monkeypatch.setattr(transcriber, "_decode", slow_decode)
    first: list[object] = []
    thread = threading.Thread(
        target=lambda: first.append(transcriber.transcribe(io.BytesIO(wav_bytes(10.0)), None, TranscribeOptions())),
        daemon=True,
    )
    thread.start()
    assert decoding.wait(10)
    # The first request's 10 s are counted while they decode: a second of 3 s would wait 3 s.
    with pytest.raises(OverloadedError):
        transcriber.transcribe(io.BytesIO(wav_bytes(3.0)), None, TranscribeOptions())
    go_on.set()
    thread.join(10)
    assert first and first[0].transcription.text == "asr heard 10.0s"
    assert transcriber.pool.admission("asr").queued_audio_s() == 0.0, "nothing is left counted"


def test_background_work_is_left_out_of_the_interactive_waits(transcriber, wav_bytes):
    """A batch line's audio is not counted in the waits interactive requests are admitted by: a request admitted
    with nothing else running is still admitted with a long background line in progress."""
    with transcriber.pool.use(transcriber.registry.get("asr"), audio_s=60.0, background=True):  # a long batch line
        assert transcriber.pool.admission("asr").queued_audio_s() == 0.0
        assert transcriber.has_room(None)
        served = transcriber.transcribe(io.BytesIO(wav_bytes(0.5)), None, TranscribeOptions())
        assert served.transcription.text == "asr heard 0.5s"
    background = transcriber.transcribe(io.BytesIO(wav_bytes(0.5)), None, TranscribeOptions(), background=True)
    assert background.transcription.text == "asr heard 0.5s"
