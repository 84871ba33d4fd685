"""A batch line's body is checked by the synchronous route's own field checks: the same refusals, naming the same
field, and the same options for the same fields."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from server.audio.transcription_form import transcription_form
from server.batches.line_body import TRANSCRIPTIONS, TRANSLATIONS, line_request


def test_the_options_are_the_forms_for_the_same_fields():
    body = {"file": "file-1", "model": "asr", "language": "en", "prompt": "p", "response_format": "verbose_json",
            "temperature": 0.2, "seed": 3, "timestamp_granularities": ["word", "segment"], "keywords": ["Kubernetes"],
            "chunking_strategy": {"type": "server_vad", "threshold": 0.6}}
    form = transcription_form(
        model="asr", language="en", prompt="p", response_format="verbose_json", temperature=0.2, seed=3,
        timestamp_granularities=["word", "segment"], keywords=["Kubernetes"], chunking_type="server_vad",
        chunking_threshold="0.6",
    )
    request = line_request(TRANSCRIPTIONS, body)
    assert request.form == form and request.file_id == "file-1" and request.url is None
    aliased = line_request(TRANSCRIPTIONS, {"file": "file-1", "timestamp_granularities[]": ["segment"]})
    assert aliased.form.granularities == {"segment"}


@pytest.mark.parametrize(
    ("endpoint", "body", "param"),
    [
        (TRANSCRIPTIONS, {"file": "f", "response_format": "xml"}, "response_format"),
        (TRANSCRIPTIONS, {"file": "f", "temperature": 3}, "temperature"),
        (TRANSCRIPTIONS, {"file": "f", "temperature": "hot"}, "temperature"),
        (TRANSCRIPTIONS, {"file": "f", "timestamp_granularities": ["word"]}, "timestamp_granularities"),
        (TRANSCRIPTIONS, {"file": "f", "include": ["logprobs"], "response_format": "text"}, "include"),
        (TRANSCRIPTIONS, {"file": "f", "chunking_strategy": {"type": "other"}}, "chunking_strategy"),
        (TRANSCRIPTIONS, {"file": "f", "known_speaker_names": ["a"]}, "known_speaker_names"),
        (TRANSCRIPTIONS, {"file": "f", "stream": True}, "stream"),
        (TRANSCRIPTIONS, {"file": "f", "surprise": 1}, "surprise"),
        (TRANSCRIPTIONS, {}, "file"),
        (TRANSCRIPTIONS, {"file": "f", "url": "http://127.0.0.1/a.wav"}, "file"),
        (TRANSCRIPTIONS, {"url": "file:///etc/passwd"}, "url"),
        (TRANSLATIONS, {"file": "f", "response_format": "diarized_json"}, "response_format"),
        (TRANSLATIONS, {"file": "f", "language": "en"}, "language"),
    ],
)
def test_a_bad_field_is_refused_naming_it(endpoint, body, param):
    with pytest.raises(InvalidInputError) as refused:
        line_request(endpoint, body)
    assert refused.value.input == param
