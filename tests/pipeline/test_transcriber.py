from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.audio_memory import AudioMemoryBudget
from core.errors import (
    InvalidInputError,
    ModelNotFoundError,
    ModelUnavailableError,
    OverloadedError,
    RequestCancelled,
    TooLargeError,
)
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

    from core.audio import AudioUpload

    active, peak, lock = [0], [0], threading.Lock()
    real_decode = AudioUpload.decode

    def slow_decode(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(AudioUpload, "decode", slow_decode)
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


# The audio memory budget: a request's decoded audio is held in it from before the decode until the audio is freed.

MIB = 2**20


def _bytes_of(seconds: float) -> int:
    return int(seconds * 16_000) * 4


def _wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def _budgeted(transcriber: Transcriber, limit: int, wait_s: float, decodes: int = 2) -> Transcriber:
    budget = AudioMemoryBudget(limit, wait_s=wait_s)
    return Transcriber(
        transcriber.pool, "multi", diarizer_id="speakers", max_concurrent_decodes=decodes, audio_budget=budget
    )


def test_a_requests_audio_is_held_while_it_runs_and_given_back_on_every_path(transcriber, wav, fake_models):
    budgeted = _budgeted(transcriber, MIB, wait_s=0.05)
    budget = budgeted.audio_budget
    fake_models.gate = threading.Event()  # the model holds the request in flight
    running = threading.Thread(target=budgeted.transcribe, args=(wav, "multi", TranscribeOptions()))
    running.start()
    _wait_until(lambda: _strategy(transcriber, "multi").calls)
    assert budget.held_bytes == _bytes_of(2.0)
    fake_models.gate.set()
    running.join(10)
    assert budget.held_bytes == 0, "answered"

    fake_models.fail_with = RuntimeError("no weights")
    with pytest.raises(ModelUnavailableError):
        budgeted.transcribe(wav, "pt-model", TranscribeOptions())
    assert budget.held_bytes == 0, "the model failed"

    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(RequestCancelled):
        budgeted.transcribe(wav, "multi", TranscribeOptions(), cancelled=cancelled)
    assert budget.held_bytes == 0, "the client left"

    stream = budgeted.open_stream(wav, "multi", TranscribeOptions())
    assert budget.held_bytes == _bytes_of(2.0)
    assert list(stream.segments())
    assert budget.held_bytes == 0, "streamed"
    stream = budgeted.open_stream(wav, "multi", TranscribeOptions())
    del stream
    assert budget.held_bytes == 0, "a stream never read"


def test_a_full_budget_refuses_with_a_retry_after_and_audio_over_the_whole_budget_is_too_large(
    transcriber, wav, wav_bytes, tmp_path
):
    budgeted = _budgeted(transcriber, MIB, wait_s=0.05)
    holder = budgeted.audio_budget.reserve(MIB - _bytes_of(2.0))
    with pytest.raises(OverloadedError) as caught:
        budgeted.transcribe(wav, "multi", TranscribeOptions())  # 2 s and a second of slack: 188 KiB
    assert caught.value.code == "audio_memory_full" and caught.value.retry_after_s
    holder.release()
    assert budgeted.transcribe(wav, "multi", TranscribeOptions()).transcription.text
    long = tmp_path / "long.wav"
    long.write_bytes(wav_bytes(20.0))  # 1.3 MB once decoded
    with pytest.raises(TooLargeError) as caught:
        budgeted.transcribe(long, "multi", TranscribeOptions())
    assert caught.value.code == "audio_over_memory_budget" and caught.value.input == "file"
    assert budgeted.audio_budget.held_bytes == 0


def test_a_request_waiting_for_memory_holds_no_decode_slot(transcriber, wav_bytes, tmp_path):
    """One decode slot: a five-second file that waits for room lets a two-second file that fits decode first."""
    budgeted = _budgeted(transcriber, MIB, wait_s=30, decodes=1)
    holder = budgeted.audio_budget.reserve(700 * 1024)
    five, two = tmp_path / "five.wav", tmp_path / "two.wav"
    five.write_bytes(wav_bytes(5.0))
    two.write_bytes(wav_bytes(2.0))
    condition, in_wait = budgeted.audio_budget._changed, threading.Event()
    original_wait = condition.wait
    condition.wait = lambda timeout=None: (in_wait.set(), original_wait(timeout))[1]
    waiting = threading.Thread(target=budgeted.transcribe, args=(five, "multi", TranscribeOptions()))
    waiting.start()
    assert in_wait.wait(10)
    assert budgeted.transcribe(two, "multi", TranscribeOptions()).transcription.text == "multi heard 2.0s"
    assert waiting.is_alive(), "the five-second file is still waiting for memory"
    holder.release()
    waiting.join(10)
    assert not waiting.is_alive() and budgeted.audio_budget.held_bytes == 0


def test_diarize_alone_decodes_as_transcriptions_do_and_runs_no_transcription_model(fake_models, tmp_path, wav):
    """``Transcriber.diarize``: the duration limit and the audio memory budget hold as for a transcription."""
    registry = ModelRegistry(
        [
            ModelSpec(id="multi", engine="transformers", model="x"),
            ModelSpec(id="speakers", engine="embedded_diarizer", model="z"),
        ]
    )
    pool = ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=fake_models.engine)
    transcriber = Transcriber(pool, "multi", max_audio_duration_s=60, diarizer_id="speakers",
                              audio_budget=AudioMemoryBudget(16_000 * 4 * 70, wait_s=0.0))
    result = transcriber.diarize(wav, None, DiarizeOptions(num_speakers=2))
    assert [t.speaker for t in result.turns] == ["SPEAKER_00", "SPEAKER_01"]
    assert result.model_id == "speakers" and result.duration == pytest.approx(2.0, abs=0.01)
    assert fake_models.loads == [] and transcriber.pool.loaded_ids() == ["speakers"]
    assert transcriber.audio_budget.held_bytes == 0  # the decoded audio has given its bytes back
    long = encode(tone(440.0, 65), 16_000, tmp_path / "long.wav", "pcm_s16le")
    with pytest.raises(TooLargeError):  # over the duration limit
        transcriber.diarize(long, None, DiarizeOptions())
    transcriber.max_audio_duration_s = None
    with pytest.raises(TooLargeError) as caught:  # over the audio memory budget
        transcriber.diarize(long, None, DiarizeOptions())
    assert caught.value.code == "audio_over_memory_budget"
    with pytest.raises(InvalidInputError) as info:
        transcriber.diarize(wav, "multi", DiarizeOptions())
    assert info.value.input == "model"
