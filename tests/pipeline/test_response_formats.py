from __future__ import annotations

import json
from pathlib import Path

import pytest
import srt
import webvtt

from core.audio import decode_audio
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from pipeline.known_speakers import diarize_naming_known_speakers
from pipeline.pool import ModelPool
from pipeline.transcriber import Transcriber
from pipeline.response_formats import (
    render, speaker_turns_with_text, to_diarized_json, to_jsonl, to_srt, to_verbose_json, to_vtt, token_usage,
)
from core.types import DiarizeOptions, Segment, Transcription, TranscribeOptions, Word
from strategies.base import RuntimeContext
from strategies.factory import create_engine


def _result() -> Transcription:
    return Transcription(
        text="Hello there. General Kenobi.",
        language="en",
        duration=4.5,
        segments=[
            Segment(id=0, start=0.0, end=1.25, text=" Hello there.", tokens=[1, 2], avg_logprob=-0.2,
                    words=[Word(start=0.0, end=0.5, word=" Hello"), Word(start=0.6, end=1.2, word=" there.")]),
            Segment(id=1, start=1.5, end=4.5, text=" General Kenobi.", words=[Word(start=1.5, end=2.0, word=" General")]),
            Segment(id=2, start=4.5, end=4.5, text=" "),
        ],
    )


def test_srt_has_numbered_cues_with_comma_timestamps():
    text = to_srt(_result())
    assert text.startswith("1\n00:00:00,000 --> 00:00:01,250\nHello there.\n\n2\n00:00:01,500 --> 00:00:04,500\n")
    cues = list(srt.parse(text))
    assert [c.index for c in cues] == [1, 2] and cues[1].content == "General Kenobi."


def test_vtt_has_header_and_dot_timestamps(tmp_path):
    text = to_vtt(_result())
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nHello there.\n")
    path = tmp_path / "out.vtt"
    path.write_text(text)
    captions = webvtt.read(str(path)).captions
    assert [c.start for c in captions] == ["00:00:00.000", "00:00:01.500"]


def test_verbose_json_shape():
    body = to_verbose_json(_result(), "transcribe", {"segment", "word"})
    assert body["language"] == "english" and body["duration"] == 4.5 and body["task"] == "transcribe"
    assert set(body["segments"][0]) == {
        "id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"
    }
    assert body["words"] == [  # without Whisper's leading space, as OpenAI returns them
        {"start": 0.0, "end": 0.5, "word": "Hello"},
        {"start": 0.6, "end": 1.2, "word": "there."},
        {"start": 1.5, "end": 2.0, "word": "General"},
    ]
    words_only = to_verbose_json(_result(), "transcribe", {"word"})
    assert "segments" not in words_only and "words" in words_only
    assert "words" not in to_verbose_json(_result(), "translate", set())


def test_a_translation_is_reported_in_english():
    spoken_in_portuguese = _result().model_copy(update={"language": "pt"})
    assert to_verbose_json(spoken_in_portuguese, "translate", set())["language"] == "english"
    assert to_verbose_json(spoken_in_portuguese, "transcribe", set())["language"] == "portuguese"


def test_render_dispatch():
    result = _result()
    usage = {"type": "duration", "seconds": 4.5}
    assert render(result, "json", "transcribe", set()) == {"text": "Hello there. General Kenobi.", "usage": usage}
    assert render(result, "json", "translate", set()) == {"text": "Hello there. General Kenobi."}  # as OpenAI's types
    assert render(result, "text", "transcribe", set()) == "Hello there. General Kenobi.\n"


def test_verbose_json_usage_and_language_probability():
    body = to_verbose_json(_result().model_copy(update={"language_probability": 0.93}), "transcribe", set())
    assert body["usage"] == {"type": "duration", "seconds": 4.5} and body["language_probability"] == 0.93
    translated = to_verbose_json(_result(), "translate", set())
    assert "usage" not in translated and "language_probability" not in translated


def test_token_usage_for_the_stream_done_event():
    with_tokens = [Segment(id=0, start=0.0, end=1.0, text=" Hi.", tokens=[1, 2, 3]), Segment(id=1, start=1, end=1, text=" ")]
    assert token_usage(2.0, with_tokens) == {
        "type": "tokens", "input_tokens": 100, "output_tokens": 3, "total_tokens": 103,
        "input_token_details": {"audio_tokens": 100},
    }
    assert token_usage(2.0, []) == {
        "type": "tokens", "input_tokens": 100, "output_tokens": 0, "total_tokens": 100,
        "input_token_details": {"audio_tokens": 100},
    }
    # An engine that does not report its tokens: no made-up count.
    assert token_usage(4.5, _result().segments) is None


def _diarized() -> Transcription:
    return Transcription(
        text="Hi. Hello. How are you?",
        language="en",
        duration=6.0,
        segments=[
            Segment(id=0, start=0.0, end=1.0, text=" Hi.", speaker="SPEAKER_00"),
            Segment(id=1, start=1.2, end=2.0, text=" Hello.", speaker="SPEAKER_01"),
            Segment(id=2, start=2.5, end=4.0, text=" How are", speaker="SPEAKER_00"),
            Segment(id=3, start=4.0, end=6.0, text=" you?", speaker="SPEAKER_00"),
        ],
    )


def test_diarized_json_follows_openai_shape():
    body = to_diarized_json(_diarized())
    assert body["task"] == "transcribe" and body["duration"] == 6.0 and body["text"] == "Hi. Hello. How are you?"
    assert body["usage"] == {"type": "duration", "seconds": 6.0}
    assert [s["speaker"] for s in body["segments"]] == ["A", "B", "A", "A"]
    assert body["segments"][1] == {
        "id": "seg_001", "type": "transcript.text.segment", "start": 1.2, "end": 2.0, "speaker": "B", "text": "Hello."
    }


def test_jsonl_merges_consecutive_turns_of_one_speaker():
    lines = [json.loads(line) for line in to_jsonl(_diarized()).splitlines()]
    assert lines == [
        {"speaker": "SPEAKER_00", "start": 0.0, "end": 1.0, "text": "Hi."},
        {"speaker": "SPEAKER_01", "start": 1.2, "end": 2.0, "text": "Hello."},
        {"speaker": "SPEAKER_00", "start": 2.5, "end": 6.0, "text": "How are you?"},
    ]


def test_verbose_json_keeps_openai_keys_when_speakers_are_known():
    body = to_verbose_json(_diarized(), "transcribe", {"segment"})
    assert "speaker" not in body["segments"][0]


def _spoken(start: float, end: float, text: str, speaker: str) -> Segment:
    return Segment(id=0, start=start, end=end, text=text, speaker=speaker)


def test_speaker_turns_with_text_merges_consecutive_segments():
    segments = [
        _spoken(0.0, 2.0, " Hello there.", "SPEAKER_00"),
        _spoken(2.0, 3.5, " How are you?", "SPEAKER_00"),
        _spoken(4.5, 7.0, " Fine, thanks.", "SPEAKER_01"),
        _spoken(9.5, 11.0, " Good.", "SPEAKER_00"),
    ]
    records = speaker_turns_with_text(segments)
    assert records == [
        {"speaker": "SPEAKER_00", "start": 0.0, "end": 3.5, "text": "Hello there. How are you?"},
        {"speaker": "SPEAKER_01", "start": 4.5, "end": 7.0, "text": "Fine, thanks."},
        {"speaker": "SPEAKER_00", "start": 9.5, "end": 11.0, "text": "Good."},
    ]
    lines = "\n".join(json.dumps(r) for r in records).splitlines()
    assert [json.loads(line)["speaker"] for line in lines] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]


def test_speaker_turns_with_text_of_nothing():
    assert speaker_turns_with_text([]) == []


# ------------------------------------------------------------------ every timed format on real multi-speaker audio
# tiny.en (CTranslate2) and the embedded diarizer through the real pipeline, on the corpus's multi-speaker recordings.

RECORDINGS = ["fw_stereo_diarization", "picovoice_falcon_test", "picovoice_leopard_diarization_test",
              "pyannote_dev00", "pyannote_sample"]


@pytest.fixture(scope="module")
def diarizing_transcriber(tiny_en_dir: Path, embedded_diarizer) -> tuple[Transcriber, ModelPool]:
    """tiny.en and the session's embedded diarizer in one pool, as the server wires them."""
    asr = ModelSpec(id="tiny-en", engine="ctranslate2", model=str(tiny_en_dir), language="en")
    speakers = ModelSpec(id="speakers", engine="embedded_diarizer", model="embedded")

    def factory(spec: ModelSpec, runtime: RuntimeContext):
        return embedded_diarizer if spec.id == "speakers" else create_engine(spec, runtime)

    pool = ModelPool(ModelRegistry([asr, speakers]), RuntimeContext("cpu", HubAccess()), factory=factory)
    return Transcriber(pool, default_model="tiny-en", diarizer_id="speakers"), pool


def _timed_spans(body: str | dict, response_format: str) -> list[tuple[float, float]]:
    """The (start, end) of every segment, word, cue or line a response carries."""
    if response_format in ("verbose_json", "diarized_json"):
        return [(item["start"], item["end"]) for key in ("segments", "words") for item in body.get(key, [])]
    if response_format == "jsonl":
        return [(line["start"], line["end"]) for line in map(json.loads, body.splitlines())]
    if response_format == "vtt":
        body = body.replace(".", ",")  # srt's timestamps; a caption's text holds no "-->"
        return [(c.start.total_seconds(), c.end.total_seconds()) for c in srt.parse(body.removeprefix("WEBVTT\n\n"))]
    return [(c.start.total_seconds(), c.end.total_seconds()) for c in srt.parse(body)]


@pytest.mark.parametrize("name", RECORDINGS)
def test_no_format_carries_a_span_without_duration_and_speakers_keep_the_words(
    diarizing_transcriber, corpus_dir, name
):
    transcriber, pool = diarizing_transcriber
    path = corpus_dir / "multi" / f"{name}.wav"
    options = TranscribeOptions(word_timestamps=True)
    plain = transcriber.transcribe(path, None, options).transcription
    diarized = transcriber.transcribe(path, None, options, DiarizeOptions()).transcription
    granularities = {"segment", "word"}
    for result, formats in ((plain, ("verbose_json", "srt", "vtt")),
                            (diarized, ("verbose_json", "diarized_json", "srt", "vtt", "jsonl"))):
        for response_format in formats:
            spans = _timed_spans(render(result, response_format, "transcribe", granularities), response_format)
            assert spans and [(a, b) for a, b in spans if b <= a] == [], response_format

    # The same words in the same order, only cut into speakers' turns.
    words = [w.word for s in plain.segments for w in s.words]
    assert [w.word for s in diarized.segments for w in s.words] == words
    for response_format, key in (("diarized_json", "segments"), ("jsonl", None)):
        body = render(diarized, response_format, "transcribe", granularities)
        pieces = body[key] if key else [json.loads(line) for line in body.splitlines()]
        assert " ".join(p["text"] for p in pieces).split() == plain.text.split(), response_format

    # Each speaker segment overlaps a turn of its speaker, one without a speaker overlaps none (the diarizer gives
    # the same turns for the same audio).
    with pool.use(pool.registry.get("speakers", kind="diarization")) as lease:
        turns = diarize_naming_known_speakers(lease, decode_audio(path), DiarizeOptions())
    for segment in diarized.segments:
        held = sum(max(0.0, min(segment.end, t.end) - max(segment.start, t.start))
                   for t in turns if segment.speaker in (None, t.speaker))
        assert held > 0 if segment.speaker else held == 0, (segment, turns)
