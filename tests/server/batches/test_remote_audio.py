"""A batch line's ``url`` fetched from a server on 127.0.0.1: the body in a temporary file, the upload bound
before and while it arrives, no redirect followed, errors naming ``url``."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from core.errors import InvalidInputError, TooLargeError
from server.batches.remote_audio import fetched
from server.edge.allowed_hosts import AllowedHosts, UrlNotAllowed, pinned
from tests.support.audio_origin import AudioOrigin, audio_origin

BODY = b"RIFF" + b"\0" * 2000
LOOPBACK = AllowedHosts.parse("127.0.0.1")


@pytest.fixture(scope="module")
def served() -> Iterator[AudioOrigin]:
    with audio_origin(BODY) as origin:
        yield origin


@pytest.fixture(scope="module")
def origin(served: AudioOrigin) -> str:
    return served.url


def test_the_body_is_fetched_into_a_temporary_file_removed_afterwards(origin):
    with fetched(f"{origin}/audio.wav", 10_000, 5.0, LOOPBACK) as path:
        assert path.read_bytes() == BODY
    assert not path.exists()


@pytest.mark.parametrize("route", ["/audio.wav", "/chunked"])
def test_a_body_over_the_bound_is_413_whether_declared_or_not(origin, route):
    with pytest.raises(TooLargeError) as refused:
        with fetched(f"{origin}{route}", 1000, 5.0, LOOPBACK):
            pass
    assert refused.value.input == "url"


@pytest.mark.parametrize("route", ["/redirect", "/missing"])
def test_redirects_and_errors_are_refused_naming_the_url(origin, route):
    with pytest.raises(InvalidInputError) as refused:
        with fetched(f"{origin}{route}", 10_000, 5.0, LOOPBACK):
            pass
    assert refused.value.input == "url" and refused.value.code == "audio_url_unreachable"


@pytest.mark.parametrize(
    ("allowed", "host", "resolved"),
    [
        ("", "127.0.0.1", None),  # nothing listed: nothing fetched
        ("localhost", "localhost", ["127.0.0.1"]),  # a listed name that resolves to loopback
        ("media.example", "media.example", ["169.254.169.254"]),  # ... or to the cloud metadata address
        ("*.example", "files.example", ["10.1.2.3"]),  # ... or to a private one
        ("media.example", "other.example", ["93.184.216.34"]),  # a name not listed
        ("10.0.0.0/8", "169.254.169.254", None),  # an address outside the listed network
        ("media.example", "[::1]", None),
    ],
)
def test_hosts_not_allowed_are_refused_before_any_connection(served, allowed, host, resolved):
    port = served.port
    before = len(served.paths)
    with pytest.raises(UrlNotAllowed) as refused:
        with fetched(f"http://{host}:{port}/audio.wav", 10_000, 5.0, AllowedHosts.parse(allowed),
                     resolver=lambda name: resolved):
            pass
    assert refused.value.input == "url" and refused.value.code == "url_not_allowed"
    assert len(served.paths) == before


def test_a_listed_private_address_is_fetched_and_a_public_name_passes_the_check(origin):
    allowed = AllowedHosts.parse("localhost, 127.0.0.0/8, ::1, media.example")
    port = origin.rsplit(":", 1)[1]
    with fetched(f"http://localhost:{port}/audio.wav", 10_000, 5.0, allowed) as path:  # the system's resolver
        assert path.read_bytes() == BODY
    allowed.check("https://media.example/a.mp3", resolver=lambda name: ["93.184.216.34", "2606:2800:220:1::"])


def test_the_fetch_connects_to_the_address_checked_whatever_the_name_resolves_to_next(served):
    """A name checked as 127.0.0.1 is fetched from 127.0.0.1 with its own Host header: a DNS server that would answer
    another address on the second lookup (rebinding) is never asked again."""
    port = served.port
    allowed = AllowedHosts.parse("audio.internal, 127.0.0.1")
    before = len(served.hosts)
    with fetched(f"http://audio.internal:{port}/audio.wav", 10_000, 5.0, allowed,
                 resolver=lambda name: ["127.0.0.1"]) as path:  # the system cannot resolve audio.internal
        assert path.read_bytes() == BODY
    assert served.hosts[before:] == [f"audio.internal:{port}"]


def test_a_pinned_https_request_keeps_the_name_for_tls():
    request = pinned("https://media.example:8443/a.mp3?x=1", ipaddress.ip_address("2606:2800:220:1::"))
    assert request.url == "https://[2606:2800:220:1::]:8443/a.mp3?x=1"
    assert request.headers == {"Host": "media.example:8443"} and request.extensions == {"sni_hostname": "media.example"}
