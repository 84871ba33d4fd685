"""The server's one fetch of a client's URL (``edge.remote_fetch``), against a web server on 127.0.0.1: the
allow-list and the size bound are covered with the batch lines' fetch (tests/server/batches/test_remote_audio.py);
here, the deadline for the whole fetch and the field errors name."""

from __future__ import annotations

import io
import time

import pytest

from core.errors import InvalidInputError, TooLargeError
from server.edge.allowed_hosts import AllowedHosts, UrlNotAllowed
from server.edge.remote_fetch import fetch_into
from tests.support.audio_origin import audio_origin

LOOPBACK = AllowedHosts.parse("127.0.0.1")


def test_a_body_dripped_slower_than_the_deadline_is_cut_off():
    """Each chunk arrives well within the read timeout, so only a deadline for the whole fetch stops it."""
    with audio_origin(b"x" * 2000) as origin:
        started = time.monotonic()
        with pytest.raises(InvalidInputError) as refused:
            fetch_into(f"{origin.url}/slow", io.BytesIO(), max_bytes=10_000, timeout_s=1.0, allowed=LOOPBACK,
                       where="messages.[0].content.[0].audio_url.url")
        assert time.monotonic() - started < 3.0  # the drip takes 4 s
    assert refused.value.code == "audio_url_unreachable"
    assert refused.value.input == "messages.[0].content.[0].audio_url.url"


def test_errors_name_the_field_the_url_came_in():
    where = "messages.[1].content.[0].audio_url.url"
    with audio_origin(b"x" * 2000) as origin:
        with pytest.raises(UrlNotAllowed) as not_listed:
            fetch_into(f"{origin.url}/a.wav", io.BytesIO(), max_bytes=10_000, timeout_s=5.0, allowed=AllowedHosts(),
                       where=where)
        with pytest.raises(TooLargeError) as too_large:
            fetch_into(f"{origin.url}/a.wav", io.BytesIO(), max_bytes=100, timeout_s=5.0, allowed=LOOPBACK,
                       where=where)
        assert origin.paths == ["/a.wav"]  # the host not listed was never asked
    assert not_listed.value.input == where and too_large.value.input == where
