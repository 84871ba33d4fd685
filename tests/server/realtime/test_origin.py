"""Which pages may open the realtime socket: no Origin (not a browser), the server's own origin, localhost, the
operator's list."""

from __future__ import annotations

import pytest

from server.realtime.origin import allowed_origins, origin_allowed

NONE: tuple[str, ...] = ()


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (None, "stt.example.com"),  # an SDK, curl: not a browser
        ("https://stt.example.com", "stt.example.com"),  # the server's own page
        ("http://10.0.0.5:3000", "10.0.0.5:3000"),
        ("https://stt.example.com", "stt.example.com:443"),
        ("HTTPS://STT.example.com/", "stt.example.com"),
        ("http://localhost:5173", "stt.example.com"),  # a page on the operator's own machine
        ("http://127.0.0.1:8080", "10.0.0.5:3000"),
        ("http://[::1]:3000", "10.0.0.5:3000"),
        ("http://app.localhost", "10.0.0.5:3000"),
    ],
)
def test_allowed_by_default(origin, host):
    assert origin_allowed(origin, host, NONE)


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://evil.example", "stt.example.com"),
        ("https://stt.example.com.evil.example", "stt.example.com"),
        ("http://stt.example.com", "stt.example.com:3000"),  # another port is another origin
        ("https://stt.example.com:8443", "stt.example.com"),
        ("null", "stt.example.com"),  # a file or a sandboxed frame
        ("file://", "stt.example.com"),
        ("chrome-extension://abc", "stt.example.com"),
        ("https://evil.example", None),
        ("http://[::1", "stt.example.com"),
        ("http://localhost.evil.example", "stt.example.com"),
    ],
)
def test_refused_by_default(origin, host):
    assert not origin_allowed(origin, host, NONE)


def test_the_operators_list_and_the_wildcard():
    listed = allowed_origins(" https://App.example.com/ , http://intranet:8080,,")
    assert listed == ("https://app.example.com", "http://intranet:8080")
    assert origin_allowed("https://app.example.com", "stt.example.com", listed)
    assert origin_allowed("http://intranet:8080", "stt.example.com", listed)
    assert not origin_allowed("https://other.example.com", "stt.example.com", listed)
    assert origin_allowed("https://anything.example", "stt.example.com", allowed_origins("*"))
