"""``server/edge/data_urls.py``: ``data:`` URLs and base64 as requests carry audio in text (each route's own errors
are tested with the route)."""

from __future__ import annotations

import base64
import binascii

import pytest

from server.edge.data_urls import HEADER_SEARCH_CHARS, DataUrl, decode_base64, decoded_size, parse_data_url, unwrapped

RIFF = b"RIFF\x24\x00\x00\x00WAVEfmt "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data:audio/wav;base64,UklG", DataUrl("audio/wav", True, "UklG")),
        ("DATA:audio/x-wav;codecs=1;BASE64,UklG", DataUrl("audio/x-wav;codecs=1", True, "UklG")),
        ("data:;base64,UklG", DataUrl("", True, "UklG")),
        ("data:audio/wav,RIFF%24", DataUrl("audio/wav", False, "RIFF%24")),
        ("data:,", DataUrl("", False, "")),
        ("data:audio/wav;base64,a,b", DataUrl("audio/wav", True, "a,b")),  # the first comma ends the header
    ],
)
def test_data_urls_are_split_at_their_header(text, expected):
    assert parse_data_url(text) == expected


@pytest.mark.parametrize(
    "text",
    ["UklGRiQAAABX", "https://example.com/a.wav", " data:audio/wav;base64,UklG", "data:audio/wav;base64",
     "data:" + "x" * HEADER_SEARCH_CHARS + ";base64,UklG"],
)
def test_anything_else_is_not_a_data_url(text):
    assert parse_data_url(text) is None


def test_base64_is_read_strictly_once_unwrapped():
    wrapped = "UklGRiQAAABX\nQVZFZm10IA==\r\n"
    assert decode_base64(unwrapped(wrapped)) == RIFF
    assert decoded_size(unwrapped(wrapped)) == len(RIFF)
    for size in range(1, 8):
        text = base64.b64encode(bytes(size)).decode()
        assert decoded_size(text) == size
    for malformed in ("UklGRiQAAABX QVZFZm10IA==", "UklGRiQAAABXQVZFZm10I", "Ukl%47RiQ="):
        with pytest.raises(binascii.Error):
            decode_base64(malformed)
    with pytest.raises(ValueError):
        decode_base64("Uk\u00e9G")
