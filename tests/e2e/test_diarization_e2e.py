"""Speaker-attributed transcripts through a real server, with the embedded (offline) diarizer."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from bench.audio_files import encode
from bench.corpus import normalize, word_error_rate
from core.audio import SAMPLE_RATE, decode_audio

MULTI_SPEAKER = "multi/pyannote_sample.wav"  # a 30 s, two-party phone call


@pytest.fixture(scope="module")
def call_path(corpus_dir):
    return corpus_dir / MULTI_SPEAKER


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


def test_jsonl_speaker_turns(http, call_path, plain_text):
    with call_path.open("rb") as f:
        response = http.post(
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


def test_transcribe_route_with_speakers(http, call_path):
    with call_path.open("rb") as f:
        response = http.post(
            "/transcribe", files={"file": (call_path.name, f)}, data={"diarize": "true", "num_speakers": "2", "word_timestamps": "true"}
        )
    assert response.status_code == 200, response.text
    segments = response.json()["segments"]
    assert {s["speaker"] for s in segments} == {"SPEAKER_00", "SPEAKER_01"}
    assert all(w["speaker"] in {"SPEAKER_00", "SPEAKER_01"} for s in segments for w in s["words"])


def test_diarization_parameters_are_validated(http, call_path):
    with call_path.open("rb") as f:
        bad = http.post("/transcribe", files={"file": f}, data={"diarize": "true", "num_speakers": "0"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "num_speakers"
    with call_path.open("rb") as f:
        streamed = http.post("/v1/audio/transcriptions", files={"file": f},
                               data={"response_format": "jsonl", "stream": "true"})
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == "stream"


# Known speakers: two LibriSpeech speakers back to back; each one's reference is 8 s of another of their utterances.
KNOWN = (
    ("agent", "en/ls_to_1688-142285-0000.flac", "en/ls_to_1688-142285-0006.flac", "flac", "audio/flac"),
    ("customer", "en/ls_to_2414-128291-0002.flac", "en/ls_to_2414-128291-0007.flac", "pcm_s16le", "audio/wav"),
)


@pytest.fixture(scope="module")
def two_speakers(corpus_dir, tmp_path_factory):
    """(the recording, the names, their references as data URLs in two formats, when the second speaker starts)."""
    from bench.known_speakers import two_speaker_recording

    directory = tmp_path_factory.mktemp("known")
    audio, turns = two_speaker_recording(*(decode_audio(corpus_dir / heard) for _, heard, _, _, _ in KNOWN))
    recording = encode(audio, SAMPLE_RATE, directory / "call.flac", "flac")
    references = []
    for name, _, other, codec, media_type in KNOWN:
        clip = encode(decode_audio(corpus_dir / other)[: 8 * SAMPLE_RATE], SAMPLE_RATE,
                      directory / f"{name}.{'wav' if codec.startswith('pcm') else codec}", codec)
        references.append(f"data:{media_type};base64,{base64.b64encode(clip.read_bytes()).decode()}")
    return recording, [name for name, *_ in KNOWN], references, turns[1].start


def _jsonl_turns(sdk, recording, names, references) -> list[dict]:
    """jsonl speaker turns, requested through the SDK (which sends known_speaker_names[] form fields); the SDK
    cannot parse jsonl, so the raw body is read."""
    with recording.open("rb") as f:
        raw = sdk.audio.transcriptions.with_raw_response.create(
            file=f, model="whisper-1", response_format="jsonl",
            known_speaker_names=names, known_speaker_references=references,
        )
    return [json.loads(line) for line in raw.http_response.text.splitlines()]


def _speaker_of_each_half(turns: list[dict], second_starts: float) -> list[str]:
    """The speaker holding most of the transcript's time before the second speaker starts, and after."""
    halves = []
    for start, end in ((0.0, second_starts), (second_starts, float("inf"))):
        held: dict[str, float] = {}
        for t in turns:
            held[t["speaker"]] = held.get(t["speaker"], 0.0) + max(0.0, min(t["end"], end) - max(t["start"], start))
        halves.append(max(held, key=held.__getitem__))
    return halves


def test_known_speakers_name_each_half_of_a_two_speaker_call(sdk, two_speakers):
    recording, names, references, second_starts = two_speakers
    turns = _jsonl_turns(sdk, recording, names, references)
    assert _speaker_of_each_half(turns, second_starts) == ["agent", "customer"]
    assert {t["speaker"] for t in turns} == {"agent", "customer"}


def test_an_unknown_voice_keeps_its_generated_label(sdk, two_speakers):
    recording, names, references, second_starts = two_speakers
    first, second = _speaker_of_each_half(_jsonl_turns(sdk, recording, names[:1], references[:1]), second_starts)
    assert first == "agent" and second.startswith("SPEAKER_")


def test_diarized_json_carries_the_known_speakers_names(sdk, two_speakers):
    recording, names, references, _ = two_speakers
    with recording.open("rb") as f:
        result = sdk.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="diarized_json",
            known_speaker_names=names, known_speaker_references=references,
        )
    assert {s.speaker for s in result.segments} == {"agent", "customer"}
    assert result.segments[0].speaker == "agent" and result.segments[-1].speaker == "customer"


def test_known_speakers_are_validated_by_name(sdk, two_speakers):
    recording, names, references, _ = two_speakers
    with recording.open("rb") as f, pytest.raises(openai.BadRequestError) as info:
        sdk.audio.transcriptions.create(file=f, model="whisper-1", response_format="diarized_json",
                                        known_speaker_names=names, known_speaker_references=references[:1])
    assert info.value.body["param"] == "known_speaker_references"


# ``POST /v1/audio/diarizations``: who spoke when, without a transcript, scored against the recording's reference.
DEV_RECORDING = "multi/pyannote_dev00"
LOOSE_DER = 0.35
"""Far above what the embedded diarizer scores on this recording (about 11% with the count given, see
docs/diarization.md): this checks the route carries the diarizer's turns whole, it does not measure the diarizer."""


@pytest.fixture(scope="module")
def dev_recording(corpus_dir):
    from bench.der import read_rttm

    path = corpus_dir / f"{DEV_RECORDING}.wav"
    return path, read_rttm(path.with_suffix(".rttm"))


def test_diarizations_route_gives_rttm_scored_against_the_reference(http, dev_recording, tmp_path):
    from bench.der import diarization_error_rate, read_rttm

    path, reference = dev_recording
    count = len({t.speaker for t in reference})
    with path.open("rb") as f:
        response = http.post(
            "/v1/audio/diarizations",
            files={"file": (path.name, f, "audio/wav")},
            data={"response_format": "rttm", "num_speakers": str(count)},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines and all(len(line.split()) == 10 and line.split()[1] == path.stem for line in lines)
    (tmp_path / "out.rttm").write_text(response.text)
    hypothesis = read_rttm(tmp_path / "out.rttm")
    assert len({t.speaker for t in hypothesis}) == count
    assert diarization_error_rate(reference, hypothesis)["der"] <= LOOSE_DER


def test_diarizations_route_json_with_the_count_estimated(http, dev_recording):
    path, reference = dev_recording
    with path.open("rb") as f:
        response = http.post("/v1/audio/diarizations", files={"file": (path.name, f, "audio/wav")},
                             data={"model": "embedded-diarizer"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"duration", "speakers", "segments"}
    assert body["speakers"] == list(dict.fromkeys(s["speaker"] for s in body["segments"]))
    assert abs(len(body["speakers"]) - len({t.speaker for t in reference})) <= 1
    assert all(s["start"] < s["end"] <= body["duration"] + 0.01 for s in body["segments"])
    with path.open("rb") as f:
        bad = http.post("/v1/audio/diarizations", files={"file": f}, data={"max_speakers": "0"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "max_speakers"
