"""The official OpenAI SDK against a real ``bentoml serve`` process."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
import srt
import webvtt

from bench.corpus import normalize
from tests.support.audio import JFK_PHRASE

JFK_SECONDS = 11.0


def _create(sdk: openai.OpenAI, path: Path, **kwargs):
    with path.open("rb") as f:
        return sdk.audio.transcriptions.create(file=f, model=kwargs.pop("model", "whisper-1"), **kwargs)


def test_json(sdk, jfk_path):
    result = _create(sdk, jfk_path)
    assert JFK_PHRASE in normalize(result.text)


def test_text(sdk, jfk_path, server):
    result = _create(sdk, jfk_path, response_format="text")
    assert isinstance(result, str) and JFK_PHRASE in normalize(result)


def test_srt_parses_with_increasing_cues_inside_the_audio(sdk, jfk_path):
    body = _create(sdk, jfk_path, response_format="srt")
    cues = list(srt.parse(body))
    assert [c.index for c in cues] == list(range(1, len(cues) + 1)) and cues
    assert "00:00:00,000 --> " in body
    _assert_increasing_and_inside([(c.start.total_seconds(), c.end.total_seconds()) for c in cues], JFK_SECONDS)
    assert JFK_PHRASE in normalize(" ".join(c.content for c in cues))


def test_vtt_parses_with_increasing_cues_inside_the_audio(sdk, jfk_path, tmp_path):
    body = _create(sdk, jfk_path, response_format="vtt")
    assert body.startswith("WEBVTT")
    path = tmp_path / "jfk.vtt"
    path.write_text(body)
    captions = webvtt.read(str(path)).captions
    _assert_increasing_and_inside([(c.start_in_seconds, c.end_in_seconds) for c in captions], JFK_SECONDS)


def _assert_increasing_and_inside(spans: list[tuple[float, float]], duration: float) -> None:
    assert spans
    for (start, end), (next_start, _) in zip(spans, spans[1:] + [(duration, duration)]):
        assert 0 <= start < end <= duration + 0.05
        assert next_start >= start


def test_verbose_json_with_word_and_segment_timestamps(sdk, jfk_path):
    result = _create(sdk, jfk_path, response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert result.language == "english" and result.duration == pytest.approx(JFK_SECONDS, abs=0.1)
    assert JFK_PHRASE in normalize(result.text)
    segments, words = result.segments, result.words
    assert segments and len(words) >= 20
    for segment in segments:
        assert segment.tokens and segment.avg_logprob < 0 and 0 <= segment.no_speech_prob <= 1
        assert segment.compression_ratio > 0 and segment.temperature == 0.0
    previous = 0.0
    for word in words:
        assert word.start >= previous - 0.01 and word.start <= word.end
        previous = word.end
        assert any(s.start - 0.01 <= word.start and word.end <= s.end + 0.01 for s in segments)


def test_usage_language_probability_and_words_without_leading_space(sdk, jfk_path):
    plain = _create(sdk, jfk_path)
    assert plain.usage.type == "duration" and plain.usage.seconds == pytest.approx(JFK_SECONDS, abs=0.1)
    verbose = _create(sdk, jfk_path, response_format="verbose_json", timestamp_granularities=["word"])
    assert verbose.usage.seconds == pytest.approx(JFK_SECONDS, abs=0.1)
    assert verbose.model_extra["language_probability"] == 1.0  # tiny.en: English is given, not detected
    assert verbose.words and all(w.word == w.word.strip() and w.word for w in verbose.words)
    # segment granularity goes with json and text too, as OpenAI accepts it
    assert JFK_PHRASE in normalize(_create(sdk, jfk_path, timestamp_granularities=["segment"]).text)
    assert JFK_PHRASE in normalize(_create(sdk, jfk_path, response_format="text", timestamp_granularities=["segment"]))


def test_chunking_strategy_server_vad_cuts_at_the_requests_pauses(sdk, jfk_path):
    whole = _create(sdk, jfk_path, response_format="verbose_json", chunking_strategy="auto")
    vad = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 100, "silence_duration_ms": 200}
    cut = _create(sdk, jfk_path, response_format="verbose_json", chunking_strategy=vad)
    # Each clip's segments carry its offset as Whisper's seek (10 ms frames): one clip, then one per pause.
    assert {s.seek for s in whole.segments} == {0}
    assert len({s.seek for s in cut.segments}) >= 3 and min(s.seek for s in cut.segments) > 0
    assert JFK_PHRASE in normalize(cut.text)
    with pytest.raises(openai.BadRequestError) as info:
        _create(sdk, jfk_path, chunking_strategy={"type": "server_vad", "threshold": 1.5})
    assert info.value.body["param"] == "chunking_strategy"


def test_segment_granularity_only(sdk, jfk_path):
    result = _create(sdk, jfk_path, response_format="verbose_json", timestamp_granularities=["segment"])
    assert result.segments and not getattr(result, "words", None)


def test_stream_sends_deltas_then_done(sdk, jfk_path):
    with jfk_path.open("rb") as f:
        events = list(sdk.audio.transcriptions.create(file=f, model="whisper-1", stream=True))
    types = [e.type for e in events]
    assert types[-1] == "transcript.text.done" and set(types[:-1]) == {"transcript.text.delta"} and len(types) >= 2
    assert events[-1].text == "".join(e.delta for e in events[:-1]).strip()
    assert JFK_PHRASE in normalize(events[-1].text)
    usage = events[-1].usage  # transcript.text.done declares token usage only: audio tokens at 50 a second
    assert usage.type == "tokens" and usage.input_tokens == round(JFK_SECONDS * 50) and usage.output_tokens > 10
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_stream_words_have_no_leading_space(sdk, jfk_path):
    with jfk_path.open("rb") as f:
        events = list(sdk.audio.transcriptions.create(
            file=f, model="whisper-1", stream=True, response_format="verbose_json", timestamp_granularities=["word"]
        ))
    words = [w for e in events[:-1] for w in e.model_extra["words"]]
    assert len(words) >= 20 and all(w["word"] and w["word"] == w["word"].strip() for w in words)


def test_stream_starts_before_a_long_file_is_decoded(sdk, long_concat):
    started = time.monotonic()
    arrivals = []
    with long_concat.path.open("rb") as f:
        for event in sdk.audio.transcriptions.create(file=f, model="whisper-1", stream=True):
            arrivals.append((time.monotonic() - started, event.type))
    deltas = [t for t, kind in arrivals if kind == "transcript.text.delta"]
    assert len(deltas) >= 5
    # Progress: the first words arrive well before the last ones, not all at once at the end.
    assert deltas[0] < 0.5 * arrivals[-1][0]


def test_translation(sdk, jfk_path):
    with jfk_path.open("rb") as f:
        result = sdk.audio.translations.create(file=f, model="whisper-1")
    assert JFK_PHRASE in normalize(result.text)
    with jfk_path.open("rb") as f:
        verbose = sdk.audio.translations.create(file=f, model="tiny-en", response_format="verbose_json")
    assert verbose.segments and verbose.duration == pytest.approx(JFK_SECONDS, abs=0.1)


def test_prompt_and_temperature(sdk, jfk_path):
    result = _create(sdk, jfk_path, prompt="The inaugural address of John F. Kennedy.", temperature=0.2)
    assert "country" in normalize(result.text)


def test_models(sdk):
    models = sdk.models.list()
    ids = [m.id for m in models.data]
    assert {"tiny-en", "freds0", "whisper-large-v3-turbo", "embedded-diarizer"} <= set(ids)
    assert all(m.object == "model" and m.owned_by for m in models.data)
    assert sdk.models.retrieve("tiny-en").id == "tiny-en"
    assert sdk.models.retrieve("whisper-1").id == "whisper-1"
    alias = next(m for m in models.data if m.id == "whisper-1")  # listed too, as OpenAI lists the names it takes
    assert alias.model_extra["alias_of"] == "tiny-en" and alias.model_extra["default"]
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-17")


def test_typed_errors_carry_our_messages(sdk, jfk_path, tmp_path):
    with pytest.raises(openai.NotFoundError) as info:
        _create(sdk, jfk_path, model="no-such-model")
    assert "no-such-model" in info.value.message and info.value.body["param"] == "model"

    with pytest.raises(openai.BadRequestError) as info:
        _create(sdk, jfk_path, response_format="docx")
    assert info.value.body["param"] == "response_format"

    with pytest.raises(openai.BadRequestError) as info:
        _create(sdk, jfk_path, temperature=3)
    assert info.value.body["param"] == "temperature"

    with pytest.raises(openai.BadRequestError) as info:
        _create(sdk, jfk_path, timestamp_granularities=["word"])
    assert "verbose_json" in info.value.message

    with pytest.raises(openai.BadRequestError) as info:
        _create(sdk, jfk_path, language="zz")
    assert info.value.body["param"] == "language"

    not_audio = tmp_path / "notes.mp3"
    not_audio.write_text("not audio at all\n" * 100)
    with pytest.raises(openai.BadRequestError) as info:  # as OpenAI answers it, where /transcribe says 415
        _create(sdk, not_audio)
    assert info.value.body["param"] == "file" and info.value.body["type"] == "invalid_request_error"

    with pytest.raises(openai.InternalServerError) as info:
        _create(sdk, jfk_path, model="freds0")
    assert info.value.status_code == 503 and "freds0" in info.value.message


def test_other_engines_through_the_sdk(sdk, jfk_path):
    for model in ("tiny-en-hf", "lite-tiny"):
        result = _create(sdk, jfk_path, model=model, response_format="verbose_json")
        assert JFK_PHRASE in normalize(result.text) and result.segments, model
