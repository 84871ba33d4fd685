"""``/v1/audio/*`` on stand-in engines (``tests/fakes.py``: each clip comes back as
"asr heard N.Ns"; the diarizer hears two speakers), through the real ``/v1`` app and the official SDK, which
parses every body and event into the ``openai`` package's own types."""

from __future__ import annotations

import base64
import json
import threading

import openai
import pytest

from server.collaborators import RouteSettings
from tests.fakes import FakeASREngine


@pytest.fixture
def wav(wav_bytes) -> bytes:
    """A WAV file of 5 s of a 220 Hz tone."""
    return wav_bytes(5.0)


def _create(sdk: openai.OpenAI, audio: bytes, **kwargs):
    return sdk.audio.transcriptions.create(file=("a.wav", audio), model=kwargs.pop("model", "whisper-1"), **kwargs)


def test_usage_on_json_verbose_json_and_diarized_json(sdk, wav):
    for response_format in ("json", "verbose_json", "diarized_json"):
        result = _create(sdk, wav, response_format=response_format)
        assert result.usage is not None, response_format
        assert result.usage.type == "duration" and result.usage.seconds == pytest.approx(5.0), response_format


def test_translations_have_no_usage_nor_language_probability(sdk, wav):
    plain = sdk.audio.translations.create(file=("a.wav", wav), model="whisper-1")
    verbose = sdk.audio.translations.create(file=("a.wav", wav), model="whisper-1", response_format="verbose_json")
    assert plain.model_extra == {} and verbose.language == "english"
    assert "usage" not in verbose.model_extra and "language_probability" not in verbose.model_extra


def test_verbose_json_reports_the_detected_languages_probability(sdk, wav, fake_models):
    fake_models.detected_language, fake_models.detected_probability = "pt", 0.87
    detected = _create(sdk, wav, response_format="verbose_json")
    assert detected.language == "portuguese" and detected.model_extra["language_probability"] == 0.87
    named = _create(sdk, wav, response_format="verbose_json", language="pt")
    assert named.language == "portuguese" and named.model_extra["language_probability"] == 1.0


@pytest.mark.parametrize("response_format", ["json", "text"])
def test_segment_granularity_is_accepted_with_json_and_text(sdk, wav, response_format):
    result = _create(sdk, wav, response_format=response_format, timestamp_granularities=["segment"])
    assert "asr heard 5.0s" in (result if isinstance(result, str) else result.text)
    with pytest.raises(openai.BadRequestError) as info:
        _create(sdk, wav, response_format=response_format, timestamp_granularities=["word"])
    assert info.value.body["param"] == "timestamp_granularities"


def test_undecodable_audio_is_a_bad_request_naming_file(sdk):
    for create in (sdk.audio.transcriptions.create, sdk.audio.translations.create):
        with pytest.raises(openai.BadRequestError) as info:
            create(file=("notes.wav", b"definitely not audio\n" * 100), model="whisper-1")
        body = info.value.body
        assert body["param"] == "file" and body["type"] == "invalid_request_error" and body["code"] == "unsupported_audio"


def test_chunking_strategy_server_vad_changes_how_the_file_is_cut(sdk, jfk_path):
    audio = jfk_path.read_bytes()
    whole = _create(sdk, audio, response_format="verbose_json")
    assert [s.text for s in whole.segments] == ["asr heard 11.0s"]  # 11 s fits one clip: decoded whole
    assert _create(sdk, audio, response_format="verbose_json", chunking_strategy="auto").text == whole.text
    # The SDK sends the object as chunking_strategy[type], chunking_strategy[silence_duration_ms], ... fields.
    vad = {"type": "server_vad", "silence_duration_ms": 200, "prefix_padding_ms": 100}
    cut = _create(sdk, audio, response_format="verbose_json", chunking_strategy=vad)
    assert len(cut.segments) >= 3
    assert all(a.end <= b.start for a, b in zip(cut.segments, cut.segments[1:]))
    assert sum(s.end - s.start for s in cut.segments) < 11.0  # the pauses between clips are not decoded
    one = _create(sdk, audio, response_format="verbose_json", chunking_strategy={**vad, "silence_duration_ms": 1500})
    assert len(one.segments) == 1 and one.segments[0].start > 0  # leading silence left out


@pytest.mark.parametrize(
    "chunking",
    ['{"type": "server_vad", "threshold": 2}', "{oops", {"type": "server_vad", "silence_duration_ms": -1}],
)
def test_invalid_chunking_strategy_is_a_bad_request_naming_it(sdk, wav, chunking):
    with pytest.raises(openai.BadRequestError) as info:
        _create(sdk, wav, chunking_strategy=chunking)
    assert info.value.body["param"] == "chunking_strategy"


def test_diarized_stream_sends_deltas_then_speaker_segments_then_done(sdk, wav):
    events = list(_create(sdk, wav, response_format="diarized_json", stream=True))
    assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.segment", "transcript.text.done"]
    delta, segment, done = events
    assert type(segment).__name__ == "TranscriptionTextSegmentEvent"
    assert (segment.id, segment.speaker, segment.start, segment.end) == ("seg_000", "A", 0.0, 5.0)
    assert segment.text == done.text == "asr heard 5.0s"
    assert "words" not in delta.model_extra  # words were decoded for the diarizer, not asked for
    whole = _create(sdk, wav, response_format="diarized_json")
    assert [s.model_dump() for s in whole.segments] == [segment.model_dump()]


def test_a_diarizer_failing_mid_stream_ends_it_with_an_error_the_sdk_raises(sdk, wav, fake_models):
    fake_models.diarizer_fails = True
    events = []
    with pytest.raises(openai.APIError) as info:
        for event in _create(sdk, wav, response_format="diarized_json", stream=True):
            events.append(event)
    assert [e.type for e in events] == ["transcript.text.delta"]  # the transcript had started streaming
    assert info.value.body["param"] == "response_format" and info.value.body["code"] == "diarizer_unavailable"


def _voice(wav_bytes, hz: float) -> str:
    """A data URL of a 3 s tone: the fake diarizer's "voice" is a tone's pitch (the ``wav`` file is 220 Hz)."""
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(3.0, hz)).decode()


def test_known_speakers_name_the_voices_they_match_in_jsonl(http, wav, wav_bytes):
    response = http.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", wav)},
        data={
            "model": "whisper-1",
            "response_format": "jsonl",
            "known_speaker_names[]": ["ghost", "agent"],
            "known_speaker_references[]": [_voice(wav_bytes, 1100), _voice(wav_bytes, 220)],
        },
    )
    assert response.status_code == 200, response.text
    assert [json.loads(line)["speaker"] for line in response.text.splitlines()] == ["agent"]


def test_a_reference_of_studio_quality_is_not_cut_by_the_form_field_limit(http, wav, wav_bytes):
    """9 s of 48 kHz stereo WAV: 2.3 MB in base64, over Starlette's default 1 MiB for a form field."""
    data = wav_bytes(9.0, rate=48_000, channels=2)
    reference = "data:audio/wav;base64," + base64.b64encode(data).decode()
    assert len(reference) > 2 * 2**20
    response = http.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", wav)},
        data={"model": "whisper-1", "response_format": "jsonl", "known_speaker_names[]": ["agent"],
              "known_speaker_references[]": [reference]},
    )
    assert response.status_code == 200, response.text
    assert [json.loads(line)["speaker"] for line in response.text.splitlines()] == ["agent"]


def test_the_sdk_sends_known_speakers_and_diarized_json_carries_their_names(sdk, wav, wav_bytes):
    known = {"known_speaker_names": ["agent"], "known_speaker_references": [_voice(wav_bytes, 220)]}
    assert [s.speaker for s in _create(sdk, wav, response_format="diarized_json", **known).segments] == ["agent"]


VOICE = "a 3 s tone"


@pytest.mark.parametrize(
    ("param", "names", "references", "response_format"),
    [
        ("known_speaker_names", ["agent"], [VOICE], "json"),
        ("known_speaker_names", ["agent", "agent"], [VOICE, VOICE], "diarized_json"),
        ("known_speaker_references", ["agent"], ["data:audio/wav;base64,AAAA"], "diarized_json"),
        ("known_speaker_references", ["agent", "customer"], [VOICE], "diarized_json"),
    ],
)
def test_invalid_known_speakers_are_bad_requests_naming_the_field(
    sdk, wav, param, names, references, response_format, wav_bytes
):
    references = [_voice(wav_bytes, 220) if r == VOICE else r for r in references]
    with pytest.raises(openai.BadRequestError) as info:
        _create(sdk, wav, response_format=response_format, known_speaker_names=names,
                known_speaker_references=references)
    assert info.value.body["param"] == param


def _engine(collaborators) -> FakeASREngine:
    transcriber = collaborators.transcriber
    with transcriber.pool.use(transcriber.resolve(None)) as lease:
        return lease.asr


def test_logprobs_come_with_json_one_per_text_token(sdk, wav):
    result = _create(sdk, wav, include=["logprobs"])
    assert [p.token for p in result.logprobs] == [" asr", " heard", " 5.0s"]
    assert [p.logprob for p in result.logprobs] == pytest.approx([-0.1, -0.2, -0.3])
    # The SDK types a Transcription's bytes as floats (its delta events' as ints).
    assert "".join(bytes(int(b) for b in p.bytes).decode() for p in result.logprobs).strip() == result.text
    assert _create(sdk, wav).logprobs is None  # only when asked for


def test_logprobs_need_json_and_are_the_only_thing_to_include(sdk, wav):
    for sent in ({"response_format": "verbose_json", "include": ["logprobs"]}, {"include": ["everything"]}):
        with pytest.raises(openai.BadRequestError) as info:
            _create(sdk, wav, **sent)
        assert info.value.body["param"] == "include"


def test_streamed_deltas_and_done_carry_the_logprobs(sdk, jfk_path):
    vad = {"type": "server_vad", "silence_duration_ms": 200, "prefix_padding_ms": 100}  # several segments
    events = list(_create(sdk, jfk_path.read_bytes(), include=["logprobs"], stream=True, chunking_strategy=vad))
    deltas, done = events[:-1], events[-1]
    assert len(deltas) >= 3 and all(type(e).__name__ == "TranscriptionTextDeltaEvent" for e in deltas)
    for delta in deltas:
        assert "".join(p.token for p in delta.logprobs) == delta.delta.replace("asr", " asr", 1)
    assert [p.model_dump() for p in done.logprobs] == [p.model_dump() for d in deltas for p in d.logprobs]


def test_an_engine_that_cannot_give_logprobs_or_take_keywords_refuses_them(sdk, wav, monkeypatch, collaborators):
    for attribute, sent, param in (
        ("returns_logprobs", {"include": ["logprobs"]}, "include"),
        ("takes_keywords", {"extra_body": {"keywords": ["Kubernetes"]}}, "keywords"),
    ):
        monkeypatch.setattr(_engine(collaborators), attribute, False)
        with pytest.raises(openai.BadRequestError) as info:
            _create(sdk, wav, **sent)
        assert info.value.body["param"] == param and "cannot" in info.value.body["message"]


def test_keywords_reach_the_engine_once_each_blank_ones_dropped(sdk, wav, collaborators):
    _create(sdk, wav, extra_body={"keywords": ["Kubernetes", " ", "Dvořák", "Kubernetes"]})
    assert _engine(collaborators).calls[-1].keywords == ("Kubernetes", "Dvořák")
    with pytest.raises(openai.BadRequestError) as info:
        _create(sdk, wav, extra_body={"keywords": [f"name{i:03d}" for i in range(72)]})  # 504 characters
    assert info.value.body["param"] == "keywords" and "too long" in info.value.body["message"]


def test_keywords_are_counted_without_separators_and_refused_with_control_characters(sdk, wav, collaborators):
    ten = [f"{i}".rjust(50, "k") for i in range(10)]  # 500 characters exactly: separators do not count
    _create(sdk, wav, extra_body={"keywords": ten})
    assert _engine(collaborators).calls[-1].keywords == tuple(ten)
    for keyword in ("Nul\x00l", "right\u202eleft", "tab\tbed", "bell\x07"):
        with pytest.raises(openai.BadRequestError) as info:
            _create(sdk, wav, extra_body={"keywords": ["fine", keyword]})
        assert info.value.body["param"] == "keywords" and "U+" in info.value.body["message"]


def test_a_stream_past_its_deadline_is_a_504_as_an_unstreamed_request_is(http, wav, use_route_settings, fake_models):
    use_route_settings(RouteSettings(request_timeout_s=0.5))
    fake_models.gate = threading.Event()  # the model never finishes its clip
    form = {"model": "whisper-1"}
    streamed = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={**form, "stream": "true"})
    whole = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data=form)
    fake_models.gate.set()
    assert (streamed.status_code, whole.status_code) == (504, 504)
    assert streamed.json() == whole.json() == {"error": {
        "message": "The request did not finish within 0.5 seconds.", "type": "server_error", "param": "file",
        "code": "timeout",
    }}
