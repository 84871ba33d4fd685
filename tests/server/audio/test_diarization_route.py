"""``POST /v1/audio/diarizations`` in process, on the stand-in diarizer (``tests/fakes.py``: two speakers, two seconds
each, whatever the audio; the registry's diarizer is "speakers"): its two formats, its refusals (each naming its
field, in OpenAI's error body), and its request log."""

from __future__ import annotations

import pytest

from server.observability import metering

ROUTE = "/v1/audio/diarizations"


@pytest.fixture
def wav(wav_bytes) -> bytes:
    """A 5 s WAV file of a 220 Hz tone (short enough to go to the models however steady it is)."""
    return wav_bytes(5.0)


def _post(http, audio: bytes, name: str = "meeting.wav", **fields):
    return http.post(ROUTE, files={"file": (name, audio, "audio/wav")}, data=fields)


def test_json_gives_the_duration_the_speakers_and_their_segments(http, wav):
    response = _post(http, wav)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "duration": 5.0,
        "speakers": ["SPEAKER_00", "SPEAKER_01"],
        "segments": [
            {"speaker": "SPEAKER_00", "start": 0.0, "end": 2.0},
            {"speaker": "SPEAKER_01", "start": 2.0, "end": 4.0},
        ],
    }


def test_rttm_has_the_ten_standard_fields_and_the_upload_name_as_file_id(http, wav):
    response = _post(http, wav, name="../Team meeting (final).WAV", response_format="rttm")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.splitlines() == [
        "SPEAKER Team_meeting_final 1 0.000 2.000 <NA> <NA> SPEAKER_00 <NA> <NA>",
        "SPEAKER Team_meeting_final 1 2.000 2.000 <NA> <NA> SPEAKER_01 <NA> <NA>",
    ]


def test_the_diarizer_can_be_named_and_gets_the_counts(http, wav, fake_models, monkeypatch):
    from tests.fakes import FakeDiarizer

    asked = []
    original = FakeDiarizer.diarize

    def diarize(self, audio, **counts):
        asked.append(counts)
        return original(self, audio, **counts)

    monkeypatch.setattr(FakeDiarizer, "diarize", diarize)
    response = _post(http, wav, model="speakers", num_speakers="3")
    assert response.status_code == 200, response.text
    assert asked == [{"num_speakers": 3, "min_speakers": None, "max_speakers": None}]
    assert _post(http, wav, min_speakers="2", max_speakers="4").status_code == 200
    assert asked[-1] == {"num_speakers": None, "min_speakers": 2, "max_speakers": 4}


BAD_FIELDS = [
    ({"response_format": "srt"}, 400, "response_format"),
    ({"num_speakers": "0"}, 400, "num_speakers"),
    ({"num_speakers": "33"}, 400, "num_speakers"),
    ({"num_speakers": "two"}, 400, "num_speakers"),
    ({"min_speakers": "-1"}, 400, "min_speakers"),
    ({"max_speakers": "0"}, 400, "max_speakers"),
    ({"min_speakers": "5", "max_speakers": "2"}, 400, "min_speakers"),
    ({"model": "asr"}, 400, "model"),  # a transcription model
    ({"model": "whisper-1"}, 404, "model"),  # the transcriptions' alias names no diarizer
    ({"model": "../speakers"}, 404, "model"),
]


@pytest.mark.parametrize(("fields", "status", "param"), BAD_FIELDS)
def test_bad_parameters_are_refused_naming_the_field(http, wav, fields, status, param):
    response = _post(http, wav, **fields)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["param"] == param


def test_undecodable_audio_is_a_bad_request_naming_file(http):
    response = _post(http, b"definitely not audio\n" * 100)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "file"


def test_two_files_are_refused_naming_file(http, wav):
    files = [("file", ("one.wav", wav, "audio/wav")), ("file", ("two.wav", wav, "audio/wav"))]
    response = http.post(ROUTE, files=files)
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"


def test_diarization_switched_off_is_refused_naming_model(http, wav, collaborators):
    collaborators.transcriber.diarizer_id = None
    response = _post(http, wav)
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"


def test_silence_has_no_speakers(http, wav_bytes):
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000 * 3)
    response = _post(http, buffer.getvalue())
    assert response.status_code == 200, response.text
    assert response.json() == {"duration": 3.0, "speakers": [], "segments": []}


def test_each_request_is_logged_with_its_outcome(http, wav, monkeypatch):
    lines: list[dict] = []
    monkeypatch.setattr(metering, "log_request", lambda **fields: lines.append(fields))
    assert _post(http, wav).status_code == 200
    assert _post(http, wav, model="missing").status_code == 404
    assert [(line["model"], line["status"]) for line in lines] == [("speakers", 200), ("unknown", 404)]
    assert lines[0]["audio_s"] == pytest.approx(5.0) and lines[0]["text"] is None
