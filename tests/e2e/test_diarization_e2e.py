"""Speaker-attributed transcripts through a real server, with the embedded (offline) diarizer."""

from __future__ import annotations

import json

import openai
import pytest

from bench.corpus import normalize, word_error_rate

MULTI_SPEAKER = "multi/pyannote_sample.wav"  # a 30 s, two-party phone call


@pytest.fixture(scope="module")
def call_path(corpus_dir):
    return corpus_dir / MULTI_SPEAKER


@pytest.fixture(scope="module")
def sdk(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def plain_text(sdk, call_path) -> str:
    """The plain transcript decoded the way diarization decodes: with word timestamps."""
    with call_path.open("rb") as f:
        return sdk.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="verbose_json", timestamp_granularities=["word"]
        ).text


def test_word_timestamps_barely_change_the_text(sdk, call_path, plain_text):
    # faster-whisper seeks by word timings when they are on, so the two decodings may differ by a word or so.
    with call_path.open("rb") as f:
        default = sdk.audio.transcriptions.create(file=f, model="whisper-1").text
    assert word_error_rate([default], [plain_text]) <= 0.05


def test_openai_sdk_accepts_diarized_json(sdk, call_path, plain_text):
    with call_path.open("rb") as f:
        result = sdk.audio.transcriptions.create(file=f, model="whisper-1", response_format="diarized_json")
    assert type(result).__name__ == "TranscriptionDiarized"
    segments = result.segments
    assert len({s.speaker for s in segments}) >= 2
    assert all(s.type == "transcript.text.segment" and s.start < s.end for s in segments)
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    assert result.duration == pytest.approx(30.0, abs=0.1)
    assert normalize(" ".join(s.text for s in segments)) == normalize(plain_text)
    assert normalize(result.text) == normalize(plain_text)
    assert result.usage.type == "duration" and result.usage.seconds == pytest.approx(30.0, abs=0.1)


def test_diarized_stream_sends_segment_events_then_done(sdk, call_path):
    with call_path.open("rb") as f:
        whole = sdk.audio.transcriptions.create(file=f, model="whisper-1", response_format="diarized_json")
    with call_path.open("rb") as f:
        events = list(
            sdk.audio.transcriptions.create(file=f, model="whisper-1", response_format="diarized_json", stream=True)
        )
    kinds = [type(e).__name__ for e in events]
    # Deltas as the clips are decoded, then the speaker turns once the diarizer has heard the file, then done.
    first_segment = kinds.index("TranscriptionTextSegmentEvent")
    assert set(kinds[:first_segment]) == {"TranscriptionTextDeltaEvent"}
    assert set(kinds[first_segment:-1]) == {"TranscriptionTextSegmentEvent"}
    assert kinds[-1] == "TranscriptionTextDoneEvent"
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert [s.id for s in segments] == [f"seg_{i:03d}" for i in range(len(segments))]
    assert len({s.speaker for s in segments}) >= 2 and segments[0].speaker == "A"
    assert all(s.start < s.end and s.text and not s.text[0].isspace() for s in segments)
    # The same clips decoded one by one instead of in one batch: the same words.
    assert word_error_rate([" ".join(s.text for s in segments)], [whole.text]) <= 0.02
    assert normalize(events[-1].text) == normalize(" ".join(s.text for s in segments))
    usage = events[-1].usage
    assert usage.type == "tokens" and usage.input_tokens == round(whole.duration * 50) and usage.output_tokens > 0


def test_jsonl_speaker_turns(client, call_path, plain_text):
    with call_path.open("rb") as f:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": (call_path.name, f, "audio/wav")},
            data={"model": "whisper-1", "response_format": "jsonl", "num_speakers": "2"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jsonl")
    turns = [json.loads(line) for line in response.text.splitlines()]
    assert all(set(t) == {"speaker", "start", "end", "text"} for t in turns)
    assert len({t["speaker"] for t in turns}) == 2 and len(turns) >= 3
    assert all(a["speaker"] != b["speaker"] for a, b in zip(turns, turns[1:])), "consecutive turns are merged"
    assert all(a["start"] <= b["start"] for a, b in zip(turns, turns[1:]))
    assert normalize(" ".join(t["text"] for t in turns)) == normalize(plain_text)


def test_transcribe_route_with_speakers(client, call_path):
    with call_path.open("rb") as f:
        response = client.post(
            "/transcribe", files={"file": (call_path.name, f)}, data={"diarize": "true", "num_speakers": "2", "word_timestamps": "true"}
        )
    assert response.status_code == 200, response.text
    segments = response.json()["segments"]
    assert {s["speaker"] for s in segments} == {"SPEAKER_00", "SPEAKER_01"}
    assert all(w["speaker"] in {"SPEAKER_00", "SPEAKER_01"} for s in segments for w in s["words"])


def test_diarization_parameters_are_validated(client, call_path):
    with call_path.open("rb") as f:
        bad = client.post("/transcribe", files={"file": f}, data={"diarize": "true", "num_speakers": "0"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "num_speakers"
    with call_path.open("rb") as f:
        streamed = client.post("/v1/audio/transcriptions", files={"file": f},
                               data={"response_format": "jsonl", "stream": "true"})
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == "stream"
