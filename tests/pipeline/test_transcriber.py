from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidInputError, ModelNotFoundError, ModelUnavailableError
from core.model_files import HubAccess
from pipeline.pool import ModelPool
from core.registry import ModelRegistry, ModelSpec
from core.types import DiarizeOptions, KnownSpeaker, TranscribeOptions
from pipeline.transcriber import Transcriber
from strategies.base import RuntimeContext
from bench.audio_files import encode
from tests.fakes import FakeModels
from tests.support.audio import tone


@pytest.fixture
def transcriber(fake_models: FakeModels) -> Transcriber:
    registry = ModelRegistry(
        [
            ModelSpec(id="multi", engine="transformers", model="x"),
            ModelSpec(id="pt-model", engine="transformers", model="y", language="pt"),
            ModelSpec(id="speakers", engine="embedded_diarizer", model="z"),
        ]
    )
    pool = ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=fake_models.engine)
    return Transcriber(pool, default_model="multi", diarizer_id="speakers")


@pytest.fixture
def wav(tmp_path, wav_bytes) -> Path:
    path = tmp_path / "tone.wav"
    path.write_bytes(wav_bytes(2.0))
    return path


def test_silence_is_empty_text_without_running_the_model(transcriber, tmp_path, fake_models):
    silence = encode(np.zeros(16_000 * 3, dtype=np.float32), 16_000, tmp_path / "silence.wav", "pcm_s16le")
    result = transcriber.transcribe(silence, "multi", TranscribeOptions()).transcription
    assert result.text == "" and result.segments == [] and result.duration == pytest.approx(3.0, abs=0.01)
    assert fake_models.loads == []
    assert list(transcriber.open_stream(silence, "multi", TranscribeOptions()).segments()) == []


def test_a_long_steady_hum_is_empty_text_without_running_the_model(transcriber, tmp_path, fake_models):
    """Not silent (-30 dBFS), but its level never moves: no voice detection, no model."""
    hum = tone(90.0, 50, amplitude=0.045)
    path = encode(hum, 16_000, tmp_path / "hum.flac", "flac")
    result = transcriber.transcribe(path, "multi", TranscribeOptions()).transcription
    assert result.text == "" and result.segments == [] and result.duration == pytest.approx(90.0, abs=0.01)
    assert list(transcriber.open_stream(path, "multi", TranscribeOptions()).segments()) == []
    assert fake_models.loads == []


def _strategy(transcriber, model_id):
    with transcriber.pool.use(transcriber.registry.get(model_id)) as lease:
        return lease.engine


def test_default_model_and_result_fields(transcriber, wav):
    result = transcriber.transcribe(wav, None, TranscribeOptions())
    assert result.model_id == "multi" and result.transcription.text == "multi heard 2.0s"
    assert result.transcription.duration == pytest.approx(2.0, abs=0.01) and result.processing_s >= 0


def test_a_language_detected_once_is_pinned_for_every_clip_and_reported(transcriber, wav, fake_models):
    fake_models.detected_language = "pt"
    result = transcriber.transcribe(wav, "multi", TranscribeOptions()).transcription
    streamed = list(transcriber.open_stream(wav, "multi", TranscribeOptions()).segments())
    assert result.language == "pt" and streamed
    assert [o.language for o in _strategy(transcriber, "multi").calls] == ["pt", "pt"]
    transcriber.transcribe(wav, "multi", TranscribeOptions(language="en"))  # a named language is not second-guessed
    assert _strategy(transcriber, "multi").calls[-1].language == "en"


def test_language_is_normalized_and_registry_default_applies(transcriber, wav):
    transcriber.transcribe(wav, "multi", TranscribeOptions(language="pt-BR"))
    transcriber.transcribe(wav, "pt-model", TranscribeOptions())
    assert _strategy(transcriber, "multi").calls[-1].language == "pt"
    assert _strategy(transcriber, "pt-model").calls[-1].language == "pt"


def test_english_only_models(transcriber, wav, fake_models):
    fake_models.multilingual = False
    with pytest.raises(InvalidInputError) as info:
        transcriber.transcribe(wav, "multi", TranscribeOptions(language="pt"))
    assert info.value.input == "language"
    transcriber.transcribe(wav, "multi", TranscribeOptions(task="translate"))
    last = _strategy(transcriber, "multi").calls[-1]
    assert (last.language, last.task) == ("en", "transcribe")


def test_unknown_model_fails_before_decoding(transcriber, tmp_path):
    not_audio = tmp_path / "x.wav"
    not_audio.write_text("text")
    with pytest.raises(ModelNotFoundError):
        transcriber.transcribe(not_audio, "missing", TranscribeOptions())


def test_memory_is_released_after_each_request_even_on_error(transcriber, wav, monkeypatch, fake_models):
    released = []
    monkeypatch.setattr("pipeline.transcriber.release_memory", lambda: released.append(1))
    transcriber.transcribe(wav, "multi", TranscribeOptions())
    fake_models.multilingual = False
    with pytest.raises(InvalidInputError):
        transcriber.transcribe(wav, "multi", TranscribeOptions(language="de"))
    assert len(released) == 2


def test_diarization_labels_speakers_on_the_same_audio(transcriber, wav):
    result = transcriber.transcribe(wav, "multi", TranscribeOptions(), DiarizeOptions(num_speakers=2)).transcription
    assert result.segments[0].speaker == "SPEAKER_00"
    assert _strategy(transcriber, "multi").calls[-1].word_timestamps, "speakers are assigned word by word"
    assert result.segments[0].words == [], "words were not asked for"


def test_known_speakers_name_the_speakers_whose_voices_match_streamed_or_not(transcriber, wav):
    # The fake diarizer's "voice" is a tone's pitch: the file and the agent's reference are both 220 Hz.
    agent = KnownSpeaker("agent", tone(3.0))
    speakers = DiarizeOptions(known_speakers=(agent,))
    result = transcriber.transcribe(wav, "multi", TranscribeOptions(), speakers).transcription
    assert [s.speaker for s in result.segments] == ["agent"]
    stream = transcriber.open_stream(wav, "multi", TranscribeOptions(), speakers)
    assert list(stream.segments()) and [s.speaker for s in stream.speaker_segments] == ["agent"]


def test_the_languages_probability_is_reported_detected_or_given(transcriber, wav, fake_models):
    fake_models.detected_language, fake_models.detected_probability = "pt", 0.8
    detected = transcriber.transcribe(wav, "multi", TranscribeOptions()).transcription
    stream = transcriber.open_stream(wav, "multi", TranscribeOptions())
    assert list(stream.segments()) and stream.language_probability == 0.8
    named = transcriber.transcribe(wav, "multi", TranscribeOptions(language="en")).transcription
    registry_default = transcriber.transcribe(wav, "pt-model", TranscribeOptions()).transcription
    assert (detected.language, detected.language_probability) == ("pt", 0.8)
    assert named.language_probability == registry_default.language_probability == 1.0  # fixed, not detected
    fake_models.detected_probability = None
    fake_models.detected_language = None  # the engine leaves it to each clip: nothing to report
    assert transcriber.transcribe(wav, "multi", TranscribeOptions()).transcription.language_probability is None


def test_a_diarized_stream_gives_segments_as_decoded_then_speaker_turns(transcriber, wav):
    stream = transcriber.open_stream(wav, "multi", TranscribeOptions(), DiarizeOptions(num_speakers=2))
    segments = stream.segments()
    first = next(segments)
    assert first.text == "multi heard 2.0s" and stream.speaker_segments is None  # the diarizer has not run yet
    assert list(segments) == []
    whole = transcriber.transcribe(wav, "multi", TranscribeOptions(), DiarizeOptions(num_speakers=2)).transcription
    assert stream.speaker_segments == whole.segments and whole.segments[0].speaker == "SPEAKER_00"
    assert _strategy(transcriber, "multi").calls[-1].word_timestamps, "speakers are assigned word by word"
    assert list(transcriber.open_stream(wav, "multi", TranscribeOptions()).segments())  # without: no speakers
    transcriber.diarizer_id = None
    with pytest.raises(InvalidInputError) as info:
        transcriber.open_stream(wav, "multi", TranscribeOptions(), DiarizeOptions())
    assert info.value.input == "diarize"


def test_diarization_switched_off_is_invalid_input(transcriber, wav):
    transcriber.diarizer_id = None
    with pytest.raises(InvalidInputError) as info:
        transcriber.transcribe(wav, "multi", TranscribeOptions(), DiarizeOptions())
    assert info.value.input == "diarize"


def test_the_diarizer_loads_once_in_the_pool_and_a_failed_load_names_diarize(transcriber, wav, fake_models):
    for _ in range(2):
        transcriber.transcribe(wav, "multi", TranscribeOptions(), DiarizeOptions())
    assert fake_models.diarizer_loads == 1 and "speakers" in transcriber.pool.loaded_ids()
    assert transcriber.pool.unload("speakers") and "speakers" not in transcriber.pool.loaded_ids()

    fake_models.diarizer_fails = True
    with pytest.raises(ModelUnavailableError) as info:
        transcriber.transcribe(wav, "multi", TranscribeOptions(), DiarizeOptions())
    assert info.value.input == "diarize" and info.value.code == "diarizer_unavailable"
    assert "cache" in info.value.message


def test_a_diarizer_is_not_a_transcription_model(transcriber, wav):
    with pytest.raises(InvalidInputError) as info:
        transcriber.transcribe(wav, "speakers", TranscribeOptions())
    assert info.value.input == "model" and "diarization model" in info.value.message


def test_an_english_only_model_refuses_another_language_before_decoding(transcriber, wav, tmp_path, fake_models):
    fake_models.multilingual = False
    transcriber.transcribe(wav, "multi", TranscribeOptions())  # the model has loaded once: it is known English-only
    not_audio = tmp_path / "x.wav"
    not_audio.write_text("not audio at all")
    with pytest.raises(InvalidInputError) as info:  # not UnsupportedAudioError: the file was never decoded
        transcriber.transcribe(not_audio, "multi", TranscribeOptions(language="pt"))
    assert info.value.input == "language"


def test_uploads_are_decoded_a_few_at_a_time(transcriber, wav, monkeypatch):
    import threading
    import time

    import pipeline.transcriber as module

    active, peak, lock = [0], [0], threading.Lock()
    real_decode = module.decode_audio

    def slow_decode(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(module, "decode_audio", slow_decode)
    limited = Transcriber(transcriber.pool, default_model="multi", max_concurrent_decodes=2)
    threads = [threading.Thread(target=limited.transcribe, args=(wav, "multi", TranscribeOptions())) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak[0] == 2


def test_a_cancelled_request_stops_decoding_its_remaining_clips(transcriber, long_concat):
    import threading

    from core.errors import RequestCancelled

    cancelled = threading.Event()
    cancelled.set()  # the client left before the first of the file's clips was decoded
    with pytest.raises(RequestCancelled):
        transcriber.transcribe(long_concat.path, "multi", TranscribeOptions(), cancelled=cancelled)
    assert _strategy(transcriber, "multi").batches == [], "no clip was decoded for nobody"
    assert transcriber.transcribe(long_concat.path, "multi", TranscribeOptions()).transcription.text
