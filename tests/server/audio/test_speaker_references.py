"""``server/audio/speaker_references.py``: ``known_speaker_references[]`` data URLs to bytes (the form's checks are in
``test_transcription_form.py``)."""

from __future__ import annotations

import base64

import pytest

from server.audio.speaker_references import data_url_bytes

RIFF = b"RIFF\x24\x00\x00\x00WAVEfmt "


@pytest.mark.parametrize(
    "url",
    [
        "data:audio/wav;base64," + base64.b64encode(RIFF).decode(),
        "DATA:audio/x-wav;codecs=1;base64," + base64.b64encode(RIFF).decode(),  # parameters, any case
        "data:;base64," + base64.b64encode(RIFF).decode(),  # no media type: FFmpeg tells the format
        "  data:audio/wav;base64,UklGRiQAAABX\nQVZFZm10IA==\n",  # `base64` without -w0 wraps its lines
    ],
)
def test_base64_data_urls_give_their_bytes(url):
    assert data_url_bytes(url) == RIFF


@pytest.mark.parametrize(
    "url",
    [
        "UklGRiQAAABXQVZFZm10IA==",  # base64 without the data: prefix
        "https://example.com/agent.wav",
        "data:audio/wav,UklGRiQAAABXQVZFZm10IA==",  # not base64-encoded
        "data:audio/wav;base64,UklGRiQAAABXQVZFZm10I",  # padding missing
        "data:audio/wav;base64,Ukl%47RiQ=",
        "data:audio/wav;base64,",
    ],
)
def test_anything_else_is_a_value_error(url):
    with pytest.raises(ValueError):
        data_url_bytes(url)
