"""``server/audio/transcription_form.py``: the transcription route's parameters, read and checked in one place."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InvalidInputError
from core.types import DiarizeOptions
from core.vad import VadSettings
from server.audio.transcription_form import chunking_of, granularities_of, transcription_form

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
    assert as_json == as_fields == VadSettings(threshold=0.3, silence_duration_ms=250)
    assert chunking_of('{"type": "server_vad"}', NO_FIELDS) == VadSettings()
    assert chunking_of('{"type": "server_vad", "prefix_padding_ms": 0}', NO_FIELDS) == VadSettings(prefix_padding_ms=0)


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


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"threshold": 1.5}', "threshold must be between 0 and 1."),
        ('{"prefix_padding_ms": -300}', "prefix_padding_ms must not be negative."),
        ('{"silence_duration_ms": -1}', "silence_duration_ms must not be negative."),
    ],
)
def test_server_vad_out_of_bounds_says_which_bound(value, message):
    with pytest.raises(InvalidInputError) as caught:
        chunking_of(value.replace("{", '{"type": "server_vad", '), NO_FIELDS)
    assert caught.value.message == "chunking_strategy." + message


def test_the_file_route_caps_the_durations_as_the_realtime_route_does():
    """One bound for both routes (``core.vad.MAX_DURATION_MS``): a padding of 10^9 ms made every clip the whole file."""
    most = '{"type": "server_vad", "prefix_padding_ms": 10000, "silence_duration_ms": 10000}'
    assert chunking_of(most, NO_FIELDS) == VadSettings(prefix_padding_ms=10_000, silence_duration_ms=10_000)
    for name in ("prefix_padding_ms", "silence_duration_ms"):
        for raw in (10_001, 10**9):
            with pytest.raises(InvalidInputError) as caught:
                chunking_of(f'{{"type": "server_vad", "{name}": {raw}}}', NO_FIELDS)
            assert caught.value.input == "chunking_strategy"
            assert caught.value.message == f"chunking_strategy.{name} must be at most 10000."


def test_bracket_fields_are_checked_too():
    assert _param_of(lambda: chunking_of(None, {**NO_FIELDS, "silence_duration_ms": "200"})) == "chunking_strategy"
    bad = {**NO_FIELDS, "type": "server_vad", "silence_duration_ms": "-5"}
    assert _param_of(lambda: chunking_of(None, bad)) == "chunking_strategy"
    assert _param_of(lambda: chunking_of("auto", {**NO_FIELDS, "type": "server_vad"})) == "chunking_strategy"


def test_chunking_reaches_the_transcribe_options():
    form = transcription_form(chunking_strategy='{"type": "server_vad", "silence_duration_ms": 800}')
    assert form.options.vad == VadSettings(silence_duration_ms=800)


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


def _voice_url(wav_bytes, seconds: float, rate: int = 16_000) -> str:
    """A data URL of ``seconds`` of a tone, as a WAV file at ``rate``."""
    import base64

    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(seconds, rate=rate)).decode()


def _known(names, references, response_format="diarized_json"):
    return lambda: transcription_form(
        response_format=response_format, known_speaker_names=names, known_speaker_references=references
    )


def test_known_speakers_reach_the_diarize_options_decoded_to_16_khz(wav_bytes):
    url = _voice_url(wav_bytes, 3.0, rate=44_100)
    form = _known(["agent", " customer "], [url, url])()
    agent, customer = form.speakers.known_speakers
    assert (agent.name, customer.name) == ("agent", "customer")
    assert agent.audio.dtype == np.float32 and agent.audio.size == pytest.approx(3 * 16_000, abs=2)
    assert _known(["agent"], [url], "jsonl")().speakers.known_speakers[0].name == "agent"
    assert transcription_form(response_format="diarized_json").speakers.known_speakers == ()


def test_known_speakers_need_a_diarized_format(wav_bytes):
    url = _voice_url(wav_bytes, 3.0)
    for response_format in ("json", "verbose_json", "text"):
        assert _param_of(_known(["agent"], [url], response_format)) == "known_speaker_names"
    assert _param_of(_known(None, [url], "json")) == "known_speaker_names"


def test_names_and_references_go_in_pairs(wav_bytes):
    url = _voice_url(wav_bytes, 3.0)
    assert _param_of(_known(["agent", "customer"], [url])) == "known_speaker_references"
    assert _param_of(_known(["agent"], None)) == "known_speaker_references"
    assert _param_of(_known(None, [url])) == "known_speaker_references"


@pytest.mark.parametrize(
    "names",
    [["a", "b", "c", "d", "e"], ["agent", "agent"], [""], ["   "], ["x" * 65], ["SPEAKER_01"], ["ag\x00ent"],
     ["agent\u202eevil"], ["ag\u2066ent"], ["two\nlines"], ["bell\x07"]],
    ids=["five", "twice", "empty", "blank", "long", "generated-label", "nul", "right-to-left-override", "isolate",
         "line-break", "control"],
)
def test_bad_names_name_known_speaker_names(names, wav_bytes):
    url = _voice_url(wav_bytes, 3.0)
    assert _param_of(_known(names, [url] * len(names))) == "known_speaker_names"


def test_a_bad_name_is_refused_before_any_reference_is_decoded(monkeypatch, wav_bytes):
    from server.audio import speaker_references

    monkeypatch.setattr(speaker_references, "decode_audio", lambda *_, **__: pytest.fail("decoded"))
    url = _voice_url(wav_bytes, 3.0)
    assert _param_of(_known(["agent", "cust\u202eomer"], [url, url])) == "known_speaker_names"


@pytest.mark.parametrize(
    "reference",
    [
        "https://example.com/agent.wav",
        "data:audio/wav,plain-text-not-base64",
        "data:audio/wav;base64,***",
        "data:audio/wav;base64,",
        "data:audio/wav;base64,bm90IGF1ZGlvIGF0IGFsbA==",  # "not audio at all"
    ],
)
def test_unusable_references_name_known_speaker_references(reference):
    assert _param_of(_known(["agent"], [reference])) == "known_speaker_references"


@pytest.mark.parametrize("seconds", [1.0, 1.9, 10.5, 30.0])
def test_references_must_hold_2_to_10_seconds(seconds, wav_bytes):
    assert _param_of(_known(["agent"], [_voice_url(wav_bytes, seconds)])) == "known_speaker_references"


@pytest.mark.parametrize("seconds", [2.0, 10.0])
def test_references_of_exactly_2_and_10_seconds_are_taken(seconds, wav_bytes):
    (speaker,) = _known(["agent"], [_voice_url(wav_bytes, seconds)])().speakers.known_speakers
    assert speaker.audio.size == pytest.approx(seconds * 16_000, abs=2)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('{"type": "server_vad", "threshold": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested more than 32 levels"),
        ('{"type": "server_vad", "x": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}", "nested more than 32 levels"),
        ('{"type": "server_vad", "threshold": [' + "0," * 20_000 + "0]}", "more than 10000 values"),
        ('{"type": "server_vad", "threshold": 0.5', "not valid: Expecting ',' delimiter (line 1, column 40)"),
    ],
)
def test_json_too_deep_too_large_or_cut_short_is_a_400_naming_chunking_strategy(value, reason):
    """A deep nesting was a RecursionError (500): the JSON is read by the server's one bounded loader."""
    with pytest.raises(InvalidInputError) as caught:
        chunking_of(value, NO_FIELDS)
    assert caught.value.input == "chunking_strategy" and reason in caught.value.message


def test_a_seed_reaches_the_transcribe_options_and_none_leaves_each_clip_its_own():
    assert transcription_form(seed=42).options.seed == 42
    assert transcription_form().options.seed is None
