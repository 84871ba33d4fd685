"""A batch line's ``url``: fetched by the server into a temporary file, only from the hosts the operator allows
(``edge.allowed_hosts``, checked before any connection), within the upload size limit and a timeout, no redirects
followed (a redirect could lead anywhere the operator did not mean)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from core.errors import InvalidInputError, TooLargeError

from ..edge.allowed_hosts import AllowedHosts, Resolver, pinned, resolve


@contextmanager
def fetched(url: str, max_bytes: int, timeout_s: float, allowed: AllowedHosts,
            resolver: Resolver = resolve) -> Iterator[Path]:
    """The audio at ``url`` in a temporary file (removed on leaving)."""
    address = allowed.check(url, resolver)
    try:
        request = pinned(url, address)  # connects to the address checked, whatever DNS says next
    except ValueError as exc:  # a port out of range
        raise InvalidInputError(f"The url is not valid: {exc}.", input="url") from None
    with tempfile.NamedTemporaryFile(prefix="stt-batch-url-", suffix=".audio") as out:
        size = 0
        try:
            with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client, client.stream(
                "GET", request.url, headers=request.headers, extensions=request.extensions
            ) as response:
                if response.status_code != 200:
                    raise InvalidInputError(
                        f"Fetching the audio URL answered HTTP {response.status_code}.", input="url",
                        code="audio_url_unreachable",
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise _too_large(max_bytes)
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(max_bytes)
                    out.write(chunk)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise InvalidInputError(
                f"The audio URL could not be fetched ({type(exc).__name__}).", input="url", code="audio_url_unreachable"
            ) from None
        out.flush()
        yield Path(out.name)


def _too_large(max_bytes: int) -> TooLargeError:
    return TooLargeError(f"The audio at the URL is larger than the upload limit of {max_bytes} bytes.", input="url")
