"""Domain errors become HTTP statuses and OpenAI bodies that name each route's own fields."""

from __future__ import annotations

import json

import pytest

from core.errors import (
    ErrorKind,
    InvalidInputError,
    ModelNotFoundError,
    ModelUnavailableError,
    OverloadedError,
    TooLargeError,
    UnsupportedAudioError,
)
from server.edge.errors import OPENAI_AUDIO_STATUSES, OPENAI_FIELDS, TRANSCRIBE_FIELDS, error_response, status_of


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        (InvalidInputError("bad"), 400, "invalid_request_error"),
        (ModelNotFoundError("missing"), 404, "invalid_request_error"),
        (TooLargeError("long"), 413, "invalid_request_error"),
        (UnsupportedAudioError("odd"), 415, "invalid_request_error"),
        (OverloadedError("busy"), 429, "rate_limit_error"),
        (ModelUnavailableError("absent"), 503, "server_error"),
    ],
)
def test_each_kind_has_its_status_and_type(error, status, error_type):
    response = error_response(error)
    assert status_of(error) == response.status_code == status
    assert json.loads(response.body)["error"]["type"] == error_type


def test_audio_routes_answer_undecodable_audio_with_400_as_openai_does():
    error = UnsupportedAudioError("odd", input="file")
    response = error_response(error, OPENAI_FIELDS, statuses=OPENAI_AUDIO_STATUSES)
    assert response.status_code == status_of(error, OPENAI_AUDIO_STATUSES) == 400
    assert json.loads(response.body)["error"] == {
        "message": "odd", "type": "invalid_request_error", "param": "file", "code": "unsupported_audio"
    }
    assert error_response(error, TRANSCRIBE_FIELDS).status_code == 415  # /transcribe (and chat) keep 415
    assert status_of(TooLargeError("long"), OPENAI_AUDIO_STATUSES) == 413  # only that kind differs


def test_every_kind_is_mapped():
    for kind in ErrorKind:
        error = InvalidInputError("x")
        error.kind = kind
        assert 400 <= status_of(error) < 600


def test_the_input_is_named_by_the_routes_own_field():
    error = ModelNotFoundError("The model 'x' does not exist.", input="model")
    assert json.loads(error_response(error, TRANSCRIBE_FIELDS).body)["error"]["param"] == "model_id"
    assert json.loads(error_response(error, OPENAI_FIELDS).body)["error"] == {
        "message": "The model 'x' does not exist.", "type": "invalid_request_error", "param": "model",
        "code": "model_not_found",
    }
    diarize = InvalidInputError("Speaker diarization is switched off on this server.", input="diarize")
    assert json.loads(error_response(diarize, OPENAI_FIELDS).body)["error"]["param"] == "response_format"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OverloadedError("busy"), "1"),
        (OverloadedError("busy", retry_after_s=2.2), "3"),
        (ModelUnavailableError("loading", retry_after_s=30), "30"),
        (InvalidInputError("bad"), None),
    ],
)
def test_every_429_and_503_says_when_to_retry(error, expected):
    assert error_response(error).headers.get("Retry-After") == expected
