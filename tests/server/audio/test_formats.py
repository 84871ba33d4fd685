from __future__ import annotations

import json

import srt
import webvtt

from server.audio.formats import (
    render, speaker_turns_with_text, to_diarized_json, to_jsonl, to_srt, to_verbose_json, to_vtt, token_usage,
)
from core.types import Segment, Transcription, Word


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
