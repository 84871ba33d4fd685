"""The text that token log-probabilities spell."""

from __future__ import annotations

from collections.abc import Iterable

from core.types import TokenLogprob


def spelled(tokens: Iterable[TokenLogprob]) -> str:
    return b"".join(bytes(t.bytes) for t in tokens).decode()
