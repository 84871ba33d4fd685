"""``server/transcription_form.py``: the transcription route's parameters, read and checked in one place."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from core.types import DiarizeOptions, VadOptions
from server.transcription_form import chunking_of, granularities_of, transcription_form

NO_FIELDS = {"type": None, "threshold": None, "prefix_padding_ms": None, "silence_duration_ms": None}


def _param_of(call) -> str | None:
    with pytest.raises(InvalidInputError) as info:
        call()
    return info.value.input


def test_defaults_give_the_servers_own_behaviour():
    form = transcription_form()
    assert form.model_id is None and form.response_format == "json" and not form.stream
    assert form.granularities == frozenset() and form.speakers is None
    assert form.options.task == "transcribe" and form.options.vad is None and not form.options.word_timestamps


@pytest.mark.parametrize("value", [None, "", "auto", '"auto"'])
def test_auto_chunking_is_the_servers_own_cutting(value):
    assert chunking_of(value, NO_FIELDS) is None


def test_server_vad_as_a_json_string_and_as_the_sdks_bracket_fields():
    as_json = chunking_of('{"type": "server_vad", "threshold": 0.3, "silence_duration_ms": 250}', NO_FIELDS)
    # openai-python sends a dict as chunking_strategy[type]=..., chunking_strategy[threshold]=... form fields.
    as_fields = chunking_of(None, {**NO_FIELDS, "type": "server_vad", "threshold": "0.3", "silence_duration_ms": "250"})
    assert as_json == as_fields == VadOptions(threshold=0.3, silence_duration_ms=250)
    assert chunking_of('{"type": "server_vad"}', NO_FIELDS) == VadOptions()
    assert chunking_of('{"type": "server_vad", "prefix_padding_ms": 0}', NO_FIELDS) == VadOptions(prefix_padding_ms=0)


@pytest.mark.parametrize(
    "value",
    [
        "{not json",
        "manual",
        "[1, 2]",
        '{"threshold": 0.5}',
        '{"type": "client_vad"}',
        '{"type": "server_vad", "threshold": 1.5}',
        '{"type": "server_vad", "threshold": -0.1}',
        '{"type": "server_vad", "threshold": NaN}',
        '{"type": "server_vad", "threshold": "loud"}',
        '{"type": "server_vad", "threshold": true}',
        '{"type": "server_vad", "silence_duration_ms": -1}',
        '{"type": "server_vad", "prefix_padding_ms": -300}',
        '{"type": "server_vad", "prefix_padding_ms": 2.5}',
        '{"type": "server_vad", "silence_duration_ms": Infinity}',
        '{"type": "server_vad", "eagerness": "high"}',
    ],
)
def test_invalid_chunking_names_chunking_strategy(value):
    assert _param_of(lambda: chunking_of(value, NO_FIELDS)) == "chunking_strategy"


def test_bracket_fields_are_checked_too():
    assert _param_of(lambda: chunking_of(None, {**NO_FIELDS, "silence_duration_ms": "200"})) == "chunking_strategy"
    bad = {**NO_FIELDS, "type": "server_vad", "silence_duration_ms": "-5"}
    assert _param_of(lambda: chunking_of(None, bad)) == "chunking_strategy"
    assert _param_of(lambda: chunking_of("auto", {**NO_FIELDS, "type": "server_vad"})) == "chunking_strategy"


def test_chunking_reaches_the_transcribe_options():
    form = transcription_form(chunking_strategy='{"type": "server_vad", "silence_duration_ms": 800}')
    assert form.options.vad == VadOptions(silence_duration_ms=800)


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt", "verbose_json", "diarized_json"])
def test_segment_granularity_goes_with_any_format(response_format):
    assert granularities_of(["segment"], response_format) == {"segment"}


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "diarized_json"])
def test_word_granularity_needs_verbose_json(response_format):
    assert _param_of(lambda: granularities_of(["word"], response_format)) == "timestamp_granularities"
    assert granularities_of(["word", "segment"], "verbose_json") == {"word", "segment"}
    assert _param_of(lambda: granularities_of(["sentence"], "verbose_json")) == "timestamp_granularities"


def test_word_granularity_asks_the_engine_for_words():
    form = transcription_form(response_format="verbose_json", timestamp_granularities=["word"])
    assert form.options.word_timestamps and form.granularities == {"word"}


def test_diarized_formats_carry_speaker_options_and_diarized_json_may_stream():
    form = transcription_form(response_format="diarized_json", stream=True, num_speakers=2)
    assert form.stream and form.speakers == DiarizeOptions(num_speakers=2)
    assert _param_of(lambda: transcription_form(response_format="jsonl", stream=True)) == "stream"
    assert _param_of(lambda: transcription_form(response_format="diarized_json", num_speakers=0)) == "num_speakers"


def test_common_checks():
    assert _param_of(lambda: transcription_form(response_format="docx")) == "response_format"
    assert _param_of(lambda: transcription_form(temperature=1.5)) == "temperature"
    assert transcription_form(model="whisper-1").model_id is None
    assert transcription_form(model="tiny-en").model_id == "tiny-en"
