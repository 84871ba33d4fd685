"""A batch line's ``url``: fetched by the server into a temporary file, through the server's one fetch
(``edge.remote_fetch``: only from the hosts the operator allows, no redirects, within the upload size limit and a
deadline)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..edge.allowed_hosts import AllowedHosts, Resolver, resolve
from ..edge.remote_fetch import fetch_into


@contextmanager
def fetched(url: str, max_bytes: int, timeout_s: float, allowed: AllowedHosts,
            resolver: Resolver = resolve) -> Iterator[Path]:
    """The audio at ``url`` in a temporary file (removed on leaving)."""
    with tempfile.NamedTemporaryFile(prefix="stt-batch-url-", suffix=".audio") as out:
        fetch_into(url, out, max_bytes=max_bytes, timeout_s=timeout_s, allowed=allowed, where="url", resolver=resolver)
        out.flush()
        yield Path(out.name)
