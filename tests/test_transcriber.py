from __future__ import annotations

import numpy as np
import pytest

from stt.errors import InvalidRequestError, ModelNotFoundError
from stt.model_files import HubAccess
from stt.model_pool import ModelPool
from stt.registry import ModelRegistry, ModelSpec
from stt.results import TranscribeOptions
from stt.transcriber import Transcriber
from strategies.base import RuntimeContext
from tests.audio_files import encode
from tests.fakes import FakeStrategy


@pytest.fixture
def transcriber():
    FakeStrategy.loads, FakeStrategy.fail_with, FakeStrategy.multilingual = [], None, True
    registry = ModelRegistry(
        [
            ModelSpec(id="multi", engine="transformers", model="x"),
            ModelSpec(id="pt-model", engine="transformers", model="y", language="pt"),
        ]
    )
    pool = ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=FakeStrategy)
    yield Transcriber(pool, default_model="multi")
    FakeStrategy.multilingual, FakeStrategy.detected_language = True, None


@pytest.fixture
def wav(tmp_path):
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16_000 * 2) / 16_000)
    return encode(tone.astype(np.float32), 16_000, tmp_path / "tone.wav", "pcm_s16le")


def test_silence_is_empty_text_without_running_the_model(transcriber, tmp_path):
    silence = encode(np.zeros(16_000 * 3, dtype=np.float32), 16_000, tmp_path / "silence.wav", "pcm_s16le")
    result = transcriber.transcribe(silence, "multi", TranscribeOptions())
    assert result.text == "" and result.segments == [] and result.duration == pytest.approx(3.0, abs=0.01)
    assert FakeStrategy.loads == []
    assert list(transcriber.stream(silence, "multi", TranscribeOptions())) == []


def _strategy(transcriber, model_id):
    with transcriber.pool.use(model_id) as strategy:
        return strategy


def test_default_model_and_result_fields(transcriber, wav):
    result = transcriber.transcribe(wav, None, TranscribeOptions())
    assert result.model_id == "multi" and result.text == "multi heard 2.0s"
    assert result.duration == pytest.approx(2.0, abs=0.01) and result.processing_time_s >= 0


def test_a_language_detected_once_is_pinned_for_every_clip_and_reported(transcriber, wav):
    FakeStrategy.detected_language = "pt"
    result = transcriber.transcribe(wav, "multi", TranscribeOptions())
    streamed = list(transcriber.stream(wav, "multi", TranscribeOptions()))
    assert result.language == "pt" and streamed
    assert [o.language for o in _strategy(transcriber, "multi").calls] == ["pt", "pt"]
    transcriber.transcribe(wav, "multi", TranscribeOptions(language="en"))  # a named language is not second-guessed
    assert _strategy(transcriber, "multi").calls[-1].language == "en"


def test_language_is_normalized_and_registry_default_applies(transcriber, wav):
    transcriber.transcribe(wav, "multi", TranscribeOptions(language="pt-BR"))
    transcriber.transcribe(wav, "pt-model", TranscribeOptions())
    assert _strategy(transcriber, "multi").calls[-1].language == "pt"
    assert _strategy(transcriber, "pt-model").calls[-1].language == "pt"


def test_english_only_models(transcriber, wav):
    FakeStrategy.multilingual = False
    with pytest.raises(InvalidRequestError) as info:
        transcriber.transcribe(wav, "multi", TranscribeOptions(language="pt"))
    assert info.value.param == "language"
    transcriber.transcribe(wav, "multi", TranscribeOptions(task="translate"))
    last = _strategy(transcriber, "multi").calls[-1]
    assert (last.language, last.task) == ("en", "transcribe")


def test_unknown_model_fails_before_decoding(transcriber, tmp_path):
    not_audio = tmp_path / "x.wav"
    not_audio.write_text("text")
    with pytest.raises(ModelNotFoundError):
        transcriber.transcribe(not_audio, "missing", TranscribeOptions())


def test_memory_is_released_after_each_request_even_on_error(transcriber, wav, monkeypatch):
    released = []
    monkeypatch.setattr("stt.transcriber.release_memory", lambda: released.append(1))
    transcriber.transcribe(wav, "multi", TranscribeOptions())
    FakeStrategy.multilingual = False
    with pytest.raises(InvalidRequestError):
        transcriber.transcribe(wav, "multi", TranscribeOptions(language="de"))
    assert len(released) == 2


def test_diarization_labels_speakers_on_the_same_audio(transcriber, wav):
    from stt.diarize import DiarizationRunner, DiarizeOptions
    from tests.test_diarize import FakeDiarizer

    transcriber.diarizer = DiarizationRunner("embedded", FakeDiarizer)
    result = transcriber.transcribe(wav, "multi", TranscribeOptions(), DiarizeOptions(num_speakers=2))
    assert result.segments[0].speaker == "SPEAKER_00"
    assert _strategy(transcriber, "multi").calls[-1].word_timestamps, "speakers are assigned word by word"
    assert result.segments[0].words == [], "words were not asked for"


def test_diarization_switched_off_is_400(transcriber, wav):
    from stt.diarize import DiarizeOptions

    transcriber.diarizer = None
    with pytest.raises(InvalidRequestError) as info:
        transcriber.transcribe(wav, "multi", TranscribeOptions(), DiarizeOptions())
    assert info.value.param == "diarize"
