"""The one way the server fetches a URL a client names (a chat message's ``audio_url``, a batch line's ``url``):
only from the hosts the operator allows (``allowed_hosts``, checked before any connection and pinned to the address
checked), no redirects followed (a redirect could lead anywhere the operator did not mean), within a size bound
(refused from the declared length, or as the bytes arrive) and a deadline for the whole fetch: a server dripping
bytes, each within the read timeout, is cut off at the first chunk after ``timeout_s`` (a read that starts just
before then may wait one more ``timeout_s``). Errors name the request's field (``where``)."""

from __future__ import annotations

import time
from typing import Protocol

import httpx

from core.errors import InvalidInputError, TooLargeError

from .allowed_hosts import AllowedHosts, Resolver, pinned, resolve


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


def fetch_into(
    url: str,
    sink: Sink,
    *,
    max_bytes: int,
    timeout_s: float,
    allowed: AllowedHosts,
    where: str,
    resolver: Resolver = resolve,
) -> int:
    """Write the body of ``url`` into ``sink``; the number of bytes written. Blocking: run it off the event loop."""
    address = allowed.check(url, resolver, where)
    try:
        request = pinned(url, address)  # connects to the address checked, whatever DNS says next
    except ValueError as exc:  # a port out of range
        raise InvalidInputError(f"The url is not valid: {exc}.", input=where) from None
    deadline = time.monotonic() + timeout_s
    size = 0
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client, client.stream(
            "GET", request.url, headers=request.headers, extensions=request.extensions
        ) as response:
            if response.status_code != 200:
                raise InvalidInputError(
                    f"Fetching the audio URL answered HTTP {response.status_code}.",
                    input=where,
                    code="audio_url_unreachable",
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes, where)
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes, where)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"the whole fetch took over {timeout_s:g} s")
                sink.write(chunk)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise InvalidInputError(
            f"The audio URL could not be fetched ({type(exc).__name__}).", input=where, code="audio_url_unreachable"
        ) from None
    return size


def _too_large(max_bytes: int, where: str) -> TooLargeError:
    return TooLargeError(f"The audio at the URL is larger than the {max_bytes} bytes allowed.", input=where)
